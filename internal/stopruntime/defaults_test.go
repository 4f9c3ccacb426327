package stopruntime_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/stopruntime"
)

// TakeoverFor outlasts two driver calls bounded by grace plus the default
// margin, and New accepts it with that grace and the default margin.
func TestTakeoverForOutlastsTwoStops(t *testing.T) {
	e := newEnv(t)
	for _, grace := range []time.Duration{time.Millisecond, stopruntime.DefaultStopGrace, time.Minute, 10 * time.Minute} {
		after := stopruntime.TakeoverFor(grace)
		assert.GreaterOrEqual(t, after, stopruntime.DefaultTakeoverAfter, "grace %s", grace)
		assert.GreaterOrEqual(t, after, 2*(grace+stopruntime.DefaultStopMargin), "grace %s", grace)
		_, err := stopruntime.New(e.store, nil, stopruntime.Options{StopGrace: grace, TakeoverAfter: after})
		require.NoError(t, err, "grace %s", grace)
	}
	assert.Equal(t, stopruntime.DefaultTakeoverAfter, stopruntime.TakeoverFor(stopruntime.DefaultStopGrace),
		"with the default grace, the takeover time is the default")
}

// Without a StopMargin, one driver call is bounded by the grace plus
// DefaultStopMargin.
func TestDriverCallIsBoundedByGracePlusTheDefaultMargin(t *testing.T) {
	e := newEnv(t)
	e.register(t, "g-1", "", "c-1")
	deadline := make(chan time.Time, 1)
	drv := &fakeDriver{steps: []func(context.Context) error{func(ctx context.Context) error {
		d, _ := ctx.Deadline()
		deadline <- d
		return nil
	}}}
	const grace = 5 * time.Second
	svc, err := stopruntime.New(e.store, map[string]stopruntime.Driver{"docker": drv}, stopruntime.Options{StopGrace: grace, Now: e.clock.Now})
	require.NoError(t, err)
	before := time.Now()
	_, err = svc.Handle(ctx, job("g-1", "1-0"))
	require.NoError(t, err)
	d := <-deadline
	assert.False(t, d.Before(before.Add(grace+stopruntime.DefaultStopMargin)), "deadline %s", d.Sub(before))
	assert.False(t, d.After(time.Now().Add(grace+stopruntime.DefaultStopMargin)), "deadline %s", d.Sub(before))
}
