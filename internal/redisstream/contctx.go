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
func (c *contContext) Value(key any) any           { return c.values.Value(key) }

// AfterFunc lets a context derived from this one (fn's WithTimeout, say)
// hang its cancellation on the reader's contCtx directly: without it the
// context package would start a goroutine per derived context to watch
// Done.
func (c *contContext) AfterFunc(f func()) func() bool { return context.AfterFunc(c.life, f) }

func (c *contContext) String() string { return "redisstream.continuation" }
