package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// readiness answers /readyz within its timeout whatever Redis does: the
// check runs apart, and a check still running when the timeout ends is
// "not ready" (go-redis ignores a context deadline on a read in progress,
// so a paused Redis would otherwise hold the answer for its read timeout).
// Probes that arrive while a check runs share it, so a stuck Redis does not
// pile up checks.
type readiness struct {
	check   func(context.Context) error
	timeout time.Duration

	mu     sync.Mutex
	flight *readyCheck
}

type readyCheck struct {
	done chan struct{}
	err  error
}

func (r *readiness) ready(ctx context.Context) error {
	r.mu.Lock()
	f := r.flight
	if f == nil {
		f = &readyCheck{done: make(chan struct{})}
		r.flight = f
		go func() {
			cctx, cancel := context.WithTimeout(context.Background(), r.timeout)
			f.err = r.check(cctx)
			cancel()
			r.mu.Lock()
			r.flight = nil
			r.mu.Unlock()
			close(f.done)
		}()
	}
	r.mu.Unlock()
	t := time.NewTimer(r.timeout)
	defer t.Stop()
	select {
	case <-f.done:
		return f.err
	case <-t.C:
		return fmt.Errorf("redis or the job stream did not answer within %s", r.timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}
