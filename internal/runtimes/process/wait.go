package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"galaxy/rtmanager/internal/stopruntime"
)

// Waiting for a process to exit. Thousands of stops may wait at once (a
// platform shutdown), so a wait must cost next to nothing: a pidfd
// (pidfd_open(2), Linux 5.3+, for any process, not only children) becomes
// readable when the process exits, and Go's netpoller waits on it with the
// other file descriptors — no thread, no timer, no /proc read per wait.
// Where pidfd_open is not available (old kernel, seccomp, out of file
// descriptors) the wait polls /proc with a backoff from PollInterval to
// maxPollInterval.

// maxPollInterval caps the polling backoff: a process is seen gone at most
// this late (or PollInterval, when that is longer).
const maxPollInterval = 250 * time.Millisecond

// waitGone waits until the process is gone (true), the wait elapses (false)
// or ctx ends (a transient error: a retry resumes).
func (d *Driver) waitGone(ctx context.Context, pid int, start uint64, wait time.Duration) (bool, error) {
	if !d.opts.PollOnly {
		gone, ok, err := d.waitPidfd(ctx, pid, start, wait)
		if ok {
			return gone, err
		}
	}
	return d.pollGone(ctx, pid, start, wait)
}

// waitPidfd waits on a pidfd; ok is false when no pidfd could be had, and
// the caller polls instead.
func (d *Driver) waitPidfd(ctx context.Context, pid int, start uint64, wait time.Duration) (gone, ok bool, err error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return true, true, nil
		}
		return false, false, nil
	}
	// Non-blocking, so os.NewFile hands it to the netpoller.
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return false, false, nil
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	// The pidfd names whatever process had the pid when it was opened. If
	// the pid still shows our start time now, that process is ours: a pid is
	// only reused after its process is gone, and ours started before.
	if alive, err := d.alive(pid, start); err != nil || !alive {
		return err == nil, true, err
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return false, false, nil
	}
	if err := f.SetReadDeadline(time.Now().Add(wait)); err != nil {
		// Not pollable after all: poll /proc instead.
		return false, false, nil
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Now()) })
	defer stop()
	var exited bool
	rerr := rc.Read(func(fd uintptr) bool {
		// Called at once, then each time the netpoller reports the pidfd
		// readable (the process exited): ask without blocking.
		n, perr := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		exited = perr == nil && n > 0
		return exited || (perr != nil && !errors.Is(perr, unix.EINTR))
	})
	switch {
	case exited:
		return true, true, nil
	case ctx.Err() != nil:
		return false, true, fmt.Errorf("wait for process %d: %w: %w", pid, stopruntime.ErrTransient, ctx.Err())
	case rerr == nil || errors.Is(rerr, os.ErrDeadlineExceeded):
		// The grace elapsed (or poll failed): the caller re-checks /proc.
		alive, err := d.alive(pid, start)
		return err == nil && !alive, true, err
	default:
		return false, false, nil
	}
}

// pollGone polls /proc with a backoff until the process is gone, the wait
// elapses or ctx ends.
func (d *Driver) pollGone(ctx context.Context, pid int, start uint64, wait time.Duration) (bool, error) {
	deadline := time.Now().Add(wait)
	interval := d.opts.PollInterval
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		alive, err := d.alive(pid, start)
		if err != nil {
			return false, err
		}
		if !alive {
			return true, nil
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false, nil
		}
		t.Reset(min(interval, left))
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("wait for process %d: %w: %w", pid, stopruntime.ErrTransient, ctx.Err())
		case <-t.C:
		}
		interval = min(2*interval, max(maxPollInterval, d.opts.PollInterval))
	}
}
