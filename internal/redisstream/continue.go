package redisstream

import (
	"context"
	"fmt"
	"runtime/debug"
)

// Continuations (Delivery.Continue): a handler that must wait for something
// slow — a runtime that takes seconds to exit — hands that wait to a
// continuation, so its worker takes the next entry at once. The entry stays
// held meanwhile: its partition key stays busy (later entries of the key
// wait), touchHeld keeps it fresh (no other consumer claims it), and Close
// waits for it. Held entries in a continuation do not count against the
// prefetch (they would soon fill it and stop reading); MaxContinuing bounds
// them instead.

// continueEntry runs fn for d outside d's worker; the worker is freed once
// a continuation slot is free (at once, unless MaxContinuing are running).
func (r *reader) continueEntry(d *Delivery, hctx context.Context, fn func(context.Context) error) {
	if r.contSlots == nil {
		// Continuations disabled: fn runs in the worker, as a plain call.
		r.settle(d, r.runContinuation(hctx, fn), true)
		return
	}
	select {
	case r.contSlots <- struct{}{}:
	case <-r.contCtx.Done():
		// Past the close deadline: leave the entry pending.
		r.mu.Lock()
		r.workerDoneLocked(d)
		r.q.finish(d)
		r.mu.Unlock()
		return
	}
	r.mu.Lock()
	r.workerDoneLocked(d)
	d.continuing = true
	r.continuing++
	r.dispatchLocked()
	// The entry no longer counts against the prefetch: the reader may read.
	r.unlockWakingReader()
	go func() {
		err := r.runContinuation(hctx, fn)
		<-r.contSlots
		r.mu.Lock()
		d.continuing = false
		r.continuing--
		r.mu.Unlock()
		r.settle(d, err, false)
	}()
}

// runContinuation runs fn with the handler's context values (the delivery
// above all) but not its cancellation — the generated controller cancels
// that context when the handler returns; fn's context (contctx.go) ends
// instead when Close gives up waiting. A panic in fn becomes an error (a Nak), as a
// failed handler's would.
func (r *reader) runContinuation(hctx context.Context, fn func(context.Context) error) (err error) {
	if hctx == nil {
		hctx = context.Background()
	}
	ctx := &contContext{values: hctx, life: r.contCtx}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("continuation panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return fn(ctx)
}

// settle acknowledges d when err is nil, else Naks it with err.
func (r *reader) settle(d *Delivery, err error, fromWorker bool) {
	if err != nil {
		d.setErr(err)
		r.settleNak(d, fromWorker)
		return
	}
	r.settleAck(d, fromWorker)
}
