package process

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"galaxy/rtmanager/internal/stopruntime"
)

// A stop acts on one pidfd (pidfd_open(2), Linux 5.3+) from the identity
// check to the exit: it is opened first, then one /proc read checks the
// pid's start time; from then on the pidfd names that very process, so the
// signal (pidfd_send_signal(2)), the uid check (PIDFD_GET_INFO, Linux
// 6.13+) and the wait (the driver's exit poller) need no further /proc
// reads. /proc
// reads are what a mass stop spends most of its CPU on: a stat file costs
// tens of µs of kernel time, a status file over 100 µs.

// pidfd is an open pidfd; its exit is waited for on the driver's
// exitPoller (poller.go).
type pidfd struct {
	fd int
	// inPoller: added to the exit poller once (a one-shot entry stays
	// there, disabled, until the pidfd is closed).
	inPoller bool
}

// openPidfd opens a pidfd for pid, or returns nil when none can be had (no
// such process, an old kernel, seccomp, out of file descriptors): the
// caller then checks /proc and polls instead.
func openPidfd(pid int) *pidfd {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil
	}
	return &pidfd{fd: fd}
}

// close closes the pidfd, which also takes it out of the exit poller.
func (p *pidfd) close() { _ = unix.Close(p.fd) }

// exited asks, without blocking, whether the process has exited (a zombie
// has).
func (p *pidfd) exited() bool {
	for {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(p.fd), Events: unix.POLLIN}}, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err == nil && n > 0
	}
}

// signal sends sig to the process itself, or to the group it leads: the
// group's id is the leader's pid, which cannot name another group while the
// leader has not exited (checked on the pidfd right before).
func (p *pidfd) signal(pid int, group bool, sig syscall.Signal) error {
	var err error
	if group {
		if p.exited() {
			return stopruntime.ErrGone
		}
		err = syscall.Kill(-pid, sig)
	} else {
		err = unix.PidfdSendSignal(p.fd, sig, nil, 0)
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ESRCH):
		return stopruntime.ErrGone
	default:
		return fmt.Errorf("signal %s to process %d: %w", sig, pid, err)
	}
}

// pidfdInfo is struct pidfd_info of linux/pidfd.h in its first version
// (PIDFD_INFO_SIZE_VER0, 64 bytes); the kernel fills what fits.
type pidfdInfo struct {
	mask, cgroupid                                        uint64
	pid, tgid, ppid                                       uint32
	ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid, pad uint32
}

const (
	pidfdInfoCreds = 1 << 1
	// pidfdGetInfo is PIDFD_GET_INFO, _IOWR(0xFF, 11, struct pidfd_info).
	pidfdGetInfo = 3<<30 | uintptr(unsafe.Sizeof(pidfdInfo{}))<<16 | 0xFF<<8 | 11
)

// errNoPidfdInfo: the kernel has no PIDFD_GET_INFO (before 6.13).
var errNoPidfdInfo = errors.New("PIDFD_GET_INFO not supported")

// uids are the real, effective, saved and filesystem uids of the process,
// as the "Uid:" line of /proc/<pid>/status gives them; an error unwrapping
// to ESRCH when it is gone, errNoPidfdInfo when the kernel cannot tell.
func (p *pidfd) uids() ([]int, error) {
	info := pidfdInfo{mask: pidfdInfoCreds}
	for {
		_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(p.fd), pidfdGetInfo, uintptr(unsafe.Pointer(&info)))
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.ESRCH:
			return nil, e
		case e == unix.ENOTTY, e == unix.EINVAL, e == unix.EOPNOTSUPP:
			return nil, errNoPidfdInfo
		case e != 0:
			return nil, fmt.Errorf("PIDFD_GET_INFO: %w", e)
		case info.mask&pidfdInfoCreds == 0:
			return nil, errNoPidfdInfo
		}
		return []int{int(info.ruid), int(info.euid), int(info.suid), int(info.fsuid)}, nil
	}
}
