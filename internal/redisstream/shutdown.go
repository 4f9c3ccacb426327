package redisstream

import (
	"context"
	"time"
)

// shutdown stops reading and claiming, drops queued entries (they stay
// pending), and waits until in-flight entries (continuations too) are
// acknowledged and committed or ctx ends; then it ends the continuations'
// context, and what they leave stays pending.
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
			// Continuations end only once nothing more is committed: a
			// continuation cut short answers nothing (a Nak now could
			// dead-letter a job merely for the shutdown).
			go func() { <-r.commitDone; r.contCancel() }()
			return
		case <-tick.C:
		}
	}
	close(r.commitStop)
	r.contCancel()
}
