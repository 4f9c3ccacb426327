// Package process is the runtime driver for local OS processes, for one host
// and for the demo.
//
// A container id names a process unambiguously as "pid:<pid>:start:<ticks>",
// where ticks is the process start time (field 22 of /proc/<pid>/stat, in
// clock ticks since boot). A pid the kernel has recycled has another start
// time, so it is reported gone and never signalled. Linux only (/proc).
package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"galaxy/rtmanager/internal/stopruntime"
)

// Options tune a Driver. Zero values take the documented defaults.
type Options struct {
	// PollInterval is how often a stopping process is checked when it cannot
	// be waited for through a pidfd (wait.go); the interval then doubles up
	// to 250ms. Default 20ms.
	PollInterval time.Duration
	// PollOnly waits by polling /proc even where pidfd_open(2) works (for
	// tests, and kernels where it misbehaves).
	PollOnly bool
	// KillWait bounds the wait for the process to vanish after SIGKILL;
	// still there after it is a transient error. Default 5s.
	KillWait time.Duration
	// ProcDir is the proc file system. Default "/proc".
	ProcDir string
	// AllowUIDs are the uids whose processes may be stopped: every uid of
	// the target (real, effective, saved, filesystem) must be listed. Nil
	// means rtmanager's own uid only. See AnyUID.
	AllowUIDs []int
	// AnyUID lifts the uid guard (AllowUIDs is then ignored).
	AnyUID bool
}

// Driver implements stopruntime.Driver for local processes.
type Driver struct {
	opts  Options
	self  self
	exits exits // children's ends, for the runtime watch (watch.go)
}

// New builds a Driver.
func New(opts Options) *Driver {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 20 * time.Millisecond
	}
	if opts.KillWait <= 0 {
		opts.KillWait = 5 * time.Second
	}
	if opts.ProcDir == "" {
		opts.ProcDir = "/proc"
	}
	if opts.AllowUIDs == nil {
		opts.AllowUIDs = []int{os.Getuid()}
	}
	return &Driver{opts: opts, self: whoAmI()}
}

// IDForPID returns the container id of a live process.
func IDForPID(pid int) (string, error) {
	return New(Options{}).IDForPID(pid)
}

// IDForPID returns the container id of a live process.
func (d *Driver) IDForPID(pid int) (string, error) {
	st, err := d.stat(pid)
	if err != nil {
		return "", fmt.Errorf("process id for pid %d: %w", pid, err)
	}
	if st.zombie {
		return "", fmt.Errorf("process id for pid %d: process has exited", pid)
	}
	return FormatID(pid, st.start), nil
}

// FormatID builds a container id from a pid and its start time in ticks.
func FormatID(pid int, startTicks uint64) string {
	return "pid:" + strconv.Itoa(pid) + ":start:" + strconv.FormatUint(startTicks, 10)
}

// ParseID splits a container id made by FormatID.
func ParseID(id string) (pid int, startTicks uint64, err error) {
	parts := strings.Split(id, ":")
	if len(parts) != 4 || parts[0] != "pid" || parts[2] != "start" {
		return 0, 0, fmt.Errorf("process container id %q: want pid:<pid>:start:<ticks>", id)
	}
	pid, err = strconv.Atoi(parts[1])
	if err != nil || pid <= 1 {
		// pid 1 (and 0, negatives) would signal init or whole groups.
		return 0, 0, fmt.Errorf("process container id %q: bad pid", id)
	}
	startTicks, err = strconv.ParseUint(parts[3], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("process container id %q: bad start time", id)
	}
	return pid, startTicks, nil
}

// Alive reports whether the process named by containerID still runs.
func (d *Driver) Alive(containerID string) (bool, error) {
	pid, start, err := ParseID(containerID)
	if err != nil {
		return false, err
	}
	return d.alive(pid, start)
}

// Stop sends SIGTERM, waits up to grace for the process to exit, then sends
// SIGKILL. The signal goes to the process group when the process leads one
// (as a runtime started with Setpgid does), so its children stop too; a
// process that does not lead its group is signalled alone, so a group it
// shares (perhaps with us) is never hit. It returns stopruntime.ErrGone when
// the process was already gone, nil when it stopped it, and an error wrapping
// ErrRefused (permanent) for a process the guard protects (guard.go).
func (d *Driver) Stop(ctx context.Context, containerID string, grace time.Duration) error {
	pid, start, err := ParseID(containerID)
	if err != nil {
		return err
	}
	if ok, err := d.alive(pid, start); err != nil || !ok {
		if err != nil {
			return err
		}
		return stopruntime.ErrGone
	}
	target := pid
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid == pid {
		target = -pgid
	}
	if err := d.guard(pid); err != nil {
		return err
	}
	if err := d.signal(pid, start, target, syscall.SIGTERM); err != nil {
		return err
	}
	if gone, err := d.waitGone(ctx, pid, start, grace); gone || err != nil {
		return err
	}
	if err := d.signal(pid, start, target, syscall.SIGKILL); err != nil {
		if errors.Is(err, stopruntime.ErrGone) {
			return nil // exited between the wait and the kill
		}
		return err
	}
	gone, err := d.waitGone(ctx, pid, start, d.opts.KillWait)
	if err != nil {
		return err
	}
	if !gone {
		return fmt.Errorf("process %d still there %s after SIGKILL: %w", pid, d.opts.KillWait, stopruntime.ErrTransient)
	}
	return nil
}

// signal re-checks identity right before kill(2) so a pid recycled while we
// waited is not hit (the remaining window is the few microseconds between).
func (d *Driver) signal(pid int, start uint64, target int, sig syscall.Signal) error {
	if ok, err := d.alive(pid, start); err != nil || !ok {
		if err != nil {
			return err
		}
		return stopruntime.ErrGone
	}
	err := syscall.Kill(target, sig)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ESRCH):
		return stopruntime.ErrGone
	default:
		return fmt.Errorf("signal %s to process %d: %w", sig, pid, err)
	}
}

// alive: the pid exists, has the recorded start time and is not a zombie (a
// zombie has exited; only its parent's wait is missing). Only a missing
// /proc entry means gone; any other read failure (EMFILE, EACCES, …) says
// nothing about the process, so it is a transient error, never "gone".
func (d *Driver) alive(pid int, start uint64) (bool, error) {
	st, err := d.stat(pid)
	switch {
	case err == nil:
		return st.start == start && !st.zombie, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ESRCH):
		// ESRCH: the process exited while its stat file was being read.
		return false, nil
	default:
		return false, fmt.Errorf("check process %d: %w: %w", pid, stopruntime.ErrTransient, err)
	}
}

type procStat struct {
	start  uint64
	zombie bool
}

func (d *Driver) stat(pid int) (procStat, error) {
	return readStat(d.opts.ProcDir, pid)
}

// parseStat reads state (field 3) and starttime (field 22). The command name
// (field 2) is in parentheses and may hold spaces or ')', so fields are
// counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("parse /proc stat: no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 20 {
		return procStat{}, errors.New("parse /proc stat: too few fields")
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat: starttime: %w", err)
	}
	return procStat{start: start, zombie: f[0] == "Z" || f[0] == "X"}, nil
}
