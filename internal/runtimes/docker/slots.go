package docker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"galaxy/rtmanager/internal/stopruntime"
)

// The stop service takes a stop's slot before its deadline starts.
var _ stopruntime.SlotDriver = (*Driver)(nil)

// slots bound the driver's concurrent Engine API work: every operation
// (a stop, a start, a find, a remove) holds one slot while it talks to
// the daemon, and its requests inside run one after another, so at most
// cap(sem) requests are in flight at the daemon. Check (start-up and
// /readyz), Inspect and NotifyExits (the runtime watch, which bounds its
// own requests) take none: readiness and exit notices must not wait behind
// long stops.
type slots struct {
	sem      chan struct{}
	inFlight atomic.Int64
	waiting  atomic.Int64
}

func newSlots(n int) *slots { return &slots{sem: make(chan struct{}, n)} }

// heldKey marks a context whose operation holds a slot of a driver.
type heldKey struct{}

type held struct {
	s        *slots
	once     sync.Once
	released atomic.Bool
}

// acquire waits for a free slot, or until ctx is done (an error wrapping
// stopruntime.ErrTransient and ctx's error). A context that already holds
// a slot of s (from an earlier acquire) gets no second one: an operation
// never waits for itself. The returned context carries the slot; release
// frees it and may be called more than once.
func (s *slots) acquire(ctx context.Context) (context.Context, func(), error) {
	if h, ok := ctx.Value(heldKey{}).(*held); ok && h.s == s && !h.released.Load() {
		return ctx, func() {}, nil
	}
	if err := ctx.Err(); err != nil {
		return ctx, func() {}, fmt.Errorf("wait for a docker request slot: %w: %w", stopruntime.ErrTransient, err)
	}
	s.waiting.Add(1)
	select {
	case s.sem <- struct{}{}:
		s.waiting.Add(-1)
	case <-ctx.Done():
		s.waiting.Add(-1)
		return ctx, func() {}, fmt.Errorf("wait for a docker request slot: %w: %w", stopruntime.ErrTransient, ctx.Err())
	}
	s.inFlight.Add(1)
	h := &held{s: s}
	release := func() {
		h.once.Do(func() {
			h.released.Store(true)
			s.inFlight.Add(-1)
			<-s.sem
		})
	}
	return context.WithValue(ctx, heldKey{}, h), release, nil
}

// AcquireSlot implements stopruntime.SlotDriver: it waits for one of the
// driver's Concurrency slots, honouring ctx. Stop, Start, Find and Remove
// called with the returned context use that slot instead of waiting for
// another; release frees it.
func (d *Driver) AcquireSlot(ctx context.Context) (context.Context, func(), error) {
	return d.slots.acquire(ctx)
}

// Concurrency is the most Engine API requests the driver has in flight at
// once (Options.Concurrency).
func (d *Driver) Concurrency() int { return cap(d.slots.sem) }

// InFlight is how many operations hold a slot now (each has at most one
// request in flight at the daemon).
func (d *Driver) InFlight() int { return int(d.slots.inFlight.Load()) }

// Waiting is how many operations wait for a slot now.
func (d *Driver) Waiting() int { return int(d.slots.waiting.Load()) }
