package redisstream

import (
	"context"
	"time"
)

// shutdown stops reading and claiming, drops queued entries (they stay
// pending), and waits until in-flight entries are acknowledged and committed
// or ctx ends.
func (r *reader) shutdown(ctx context.Context) {
	r.mu.Lock()
	if r.draining {
		// Shutting down already: wait for it, within this call's ctx.
		r.mu.Unlock()
		select {
		case <-r.commitDone:
		case <-ctx.Done():
		}
		return
	}
	r.draining = true
	r.q.releaseQueued()
	r.mu.Unlock()
	r.cancel()
	r.signal()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		r.mu.Lock()
		left := len(r.q.held)
		r.mu.Unlock()
		if left == 0 {
			break
		}
		select {
		case <-ctx.Done():
			r.logs.log.Warn("close deadline reached; unfinished entries stay pending", "entries", left)
			close(r.commitStop)
			return
		case <-tick.C:
		}
	}
	close(r.commitStop)
}
