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
	"sync/atomic"
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
	// MaxWaitSetups bounds the exit waits of the runtime watch (WaitExit)
	// setting up at once (watch.go). Default 8.
	MaxWaitSetups int
}

// Driver implements stopruntime.Driver for local processes.
type Driver struct {
	opts  Options
	self  self
	exits exits // children's ends, for the runtime watch (watch.go)
	// noPidfdInfo: the kernel lacks PIDFD_GET_INFO, read uids from /proc.
	noPidfdInfo atomic.Bool
	// procRead, when set (tests), is told the name of each /proc file read.
	procRead func(name string)
	// waitSetups holds a slot per WaitExit setting up its wait.
	waitSetups chan struct{}
	// poller waits for the exits of pidfds (poller.go).
	poller exitPoller
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
	if opts.MaxWaitSetups <= 0 {
		opts.MaxWaitSetups = 8
	}
	return &Driver{opts: opts, self: whoAmI(), waitSetups: make(chan struct{}, opts.MaxWaitSetups)}
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
// Every stop and exit wait parses one, so it does not allocate.
func ParseID(id string) (pid int, startTicks uint64, err error) {
	rest, ok := strings.CutPrefix(id, "pid:")
	pidPart, ticks, ok2 := strings.Cut(rest, ":start:")
	if !ok || !ok2 || strings.Contains(ticks, ":") {
		return 0, 0, fmt.Errorf("process container id %q: want pid:<pid>:start:<ticks>", id)
	}
	pid, err = strconv.Atoi(pidPart)
	if err != nil || pid <= 1 {
		// pid 1 (and 0, negatives) would signal init or whole groups.
		return 0, 0, fmt.Errorf("process container id %q: bad pid", id)
	}
	startTicks, err = strconv.ParseUint(ticks, 10, 64)
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
	if !d.opts.PollOnly && d.poller.start() == nil {
		if p := openPidfd(pid); p != nil {
			defer p.close()
			return d.stopPidfd(ctx, p, pid, start, grace)
		}
	}
	return d.stopPolling(ctx, pid, start, grace)
}

// stopPidfd is Stop on a pidfd of pid (pidfd.go): one /proc read, then
// every step acts on the pidfd.
func (d *Driver) stopPidfd(ctx context.Context, p *pidfd, pid int, start uint64, grace time.Duration) error {
	// The pidfd names whatever process had the pid when it was opened. If
	// the pid still shows our start time now, that process is ours: a pid is
	// only reused after its process is gone, and ours started before.
	if ok, err := d.alive(pid, start); err != nil || !ok {
		if err != nil {
			return err
		}
		return stopruntime.ErrGone
	}
	pgid, pgErr := syscall.Getpgid(pid)
	group := pgErr == nil && pgid == pid
	if err := d.check(pid, pgid, pgErr, func() ([]int, error) { return d.uidsOf(p, pid) }); err != nil {
		return err
	}
	if err := p.signal(pid, group, syscall.SIGTERM); err != nil {
		return err
	}
	if gone, err := d.poller.wait(ctx, p, pid, grace); gone || err != nil {
		return err
	}
	if err := p.signal(pid, group, syscall.SIGKILL); err != nil {
		if errors.Is(err, stopruntime.ErrGone) {
			return nil // exited between the wait and the kill
		}
		return err
	}
	gone, err := d.poller.wait(ctx, p, pid, d.opts.KillWait)
	if err != nil {
		return err
	}
	if !gone {
		return fmt.Errorf("process %d still there %s after SIGKILL: %w", pid, d.opts.KillWait, stopruntime.ErrTransient)
	}
	return nil
}

// stopPolling is Stop without a pidfd: /proc is checked before each
// signal and polled for the exit.
func (d *Driver) stopPolling(ctx context.Context, pid int, start uint64, grace time.Duration) error {
	if ok, err := d.alive(pid, start); err != nil || !ok {
		if err != nil {
			return err
		}
		return stopruntime.ErrGone
	}
	target := pid
	pgid, pgErr := syscall.Getpgid(pid)
	if pgErr == nil && pgid == pid {
		target = -pgid
	}
	if err := d.check(pid, pgid, pgErr, func() ([]int, error) { return d.uids(pid) }); err != nil {
		return err
	}
	if err := d.signal(pid, start, target, syscall.SIGTERM); err != nil {
		return err
	}
	if gone, err := d.pollGone(ctx, pid, start, grace); gone || err != nil {
		return err
	}
	if err := d.signal(pid, start, target, syscall.SIGKILL); err != nil {
		if errors.Is(err, stopruntime.ErrGone) {
			return nil // exited between the wait and the kill
		}
		return err
	}
	gone, err := d.pollGone(ctx, pid, start, d.opts.KillWait)
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
	if d.procRead != nil {
		d.procRead("stat")
	}
	return readStat(d.opts.ProcDir, pid)
}

// parseStat reads state (field 3) and starttime (field 22). The command name
// (field 2) is in parentheses and may hold spaces or ')', so fields are
// counted from the last ')'. No allocation: a mass stop parses thousands.
func parseStat(b []byte) (procStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, errors.New("parse /proc stat: no command name")
	}
	var state, startField []byte
	field := 2 // the command name
	rest := b[i+1:]
	for len(rest) > 0 && startField == nil {
		rest = bytes.TrimLeft(rest, " \n")
		if len(rest) == 0 {
			break
		}
		end := bytes.IndexAny(rest, " \n")
		if end < 0 {
			end = len(rest)
		}
		field++
		switch field {
		case 3:
			state = rest[:end]
		case 22:
			startField = rest[:end]
		}
		rest = rest[end:]
	}
	if startField == nil {
		return procStat{}, errors.New("parse /proc stat: too few fields")
	}
	start, err := strconv.ParseUint(string(startField), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("parse /proc stat: starttime: %w", err)
	}
	zombie := len(state) == 1 && (state[0] == 'Z' || state[0] == 'X')
	return procStat{start: start, zombie: zombie}, nil
}
