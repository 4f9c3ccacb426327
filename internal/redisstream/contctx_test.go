package redisstream

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type ctxKey struct{}

// A continuation's context costs one allocation (WithoutCancel, WithCancel
// and AfterFunc were about eight), keeps the handler's values without its
// cancellation, and ends — with what is derived from it — when the
// reader's continuations do.
func TestContinuationContext(t *testing.T) {
	contCtx, contCancel := context.WithCancel(context.Background())
	defer contCancel()
	r := &reader{contCtx: contCtx}
	hctx, hcancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))

	allocs := testing.AllocsPerRun(100, func() {
		_ = r.runContinuation(hctx, func(context.Context) error { return nil })
	})
	assert.LessOrEqual(t, allocs, 1.0)

	// Deriving a context from it costs what deriving from a plain
	// WithCancel does.
	derive := func(parent context.Context) float64 {
		return testing.AllocsPerRun(100, func() {
			_, cancel := context.WithTimeout(parent, time.Hour)
			cancel()
		})
	}
	plain, plainCancel := context.WithCancel(context.Background())
	defer plainCancel()
	assert.InDelta(t, derive(plain), derive(&contContext{values: hctx, life: contCtx}), 0.01)

	derived := make(chan context.Context, 1)
	require.NoError(t, r.runContinuation(hctx, func(ctx context.Context) error {
		hcancel() // the controller ends the handler's context
		assert.NoError(t, ctx.Err(), "the handler's cancellation reaches the continuation")
		assert.Equal(t, "v", ctx.Value(ctxKey{}))
		d, cancel := context.WithTimeout(ctx, time.Hour)
		t.Cleanup(cancel)
		derived <- d
		return nil
	}))
	d := <-derived
	contCancel() // Close gives up waiting
	select {
	case <-d.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a context derived from the continuation's did not end with contCtx")
	}
	assert.ErrorIs(t, d.Err(), context.Canceled)
}
