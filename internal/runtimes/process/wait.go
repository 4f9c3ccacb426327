package process

import (
	"context"
	"fmt"
	"time"

	"galaxy/rtmanager/internal/stopruntime"
)

// Waiting for a process to exit. Thousands of stops may wait at once (a
// platform shutdown), so a wait must cost next to nothing: a stop waits on
// its pidfd (pidfd.go), which becomes readable when the process exits; the
// driver's exit poller (poller.go) waits on all of them with one epoll
// instance in Go's netpoller — no thread, no /proc read per wait, a timer
// for the wait's bound. Where pidfd_open is not available (old
// kernel, seccomp, out of file descriptors) the wait polls /proc with a
// backoff from PollInterval to maxPollInterval.

// maxPollInterval caps the polling backoff: a process is seen gone at most
// this late (or PollInterval, when that is longer).
const maxPollInterval = 250 * time.Millisecond

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
