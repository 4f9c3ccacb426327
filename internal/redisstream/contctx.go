package redisstream

import (
	"context"
	"time"
)

// contContext is a continuation's context: the values of the handler's
// context (the delivery above all) with the lifetime of the reader's
// continuations (contCtx), which ends only when Close gives up waiting.
// One value instead of WithoutCancel, WithCancel and AfterFunc per
// continuation; the handler's own cancellation (the generated controller
// cancels its context when the handler returns) does not reach it.
type contContext struct {
	values context.Context // the handler's context
	life   context.Context // the reader's contCtx
}

func (c *contContext) Deadline() (time.Time, bool) { return c.life.Deadline() }
func (c *contContext) Done() <-chan struct{}       { return c.life.Done() }
func (c *contContext) Err() error                  { return c.life.Err() }

// Value asks the reader's contCtx first. It is a WithCancel of Background
// (newReader), so the one key it answers is the context package's own for
// its cancelCtx: a context derived from this one (fn's WithTimeout, say)
// then registers with contCtx directly, as the child of a plain
// WithCancel would, with no AfterFunc or goroutine to watch Done. Every
// other key is the handler's. (Unlike the per-continuation WithCancel this
// replaces, nothing ends such a context when fn returns: fn cancels what it
// derives, as go vet's lostcancel asks anyway.)
func (c *contContext) Value(key any) any {
	if v := c.life.Value(key); v != nil {
		return v
	}
	return c.values.Value(key)
}

// AfterFunc is what the context package falls back on should contCtx ever
// not be a plain cancelCtx: without it, a goroutine per derived context.
func (c *contContext) AfterFunc(f func()) func() bool { return context.AfterFunc(c.life, f) }

func (c *contContext) String() string { return "redisstream.continuation" }
