package stopruntime_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// slotDriver is a stopruntime.SlotDriver whose AcquireSlot takes queue
// (a stop queued behind others) and then records when it got the slot.
type slotDriver struct {
	queue      time.Duration
	acquireErr error

	mu        sync.Mutex
	gotSlotAt time.Time
	deadline  time.Time
	hadSlot   bool
	released  int
	stops     int
}

type slotKey struct{}

func (d *slotDriver) AcquireSlot(ctx context.Context) (context.Context, func(), error) {
	if d.acquireErr != nil {
		return ctx, func() {}, d.acquireErr
	}
	time.Sleep(d.queue) // stands for the wait behind other stops
	d.mu.Lock()
	d.gotSlotAt = time.Now()
	d.mu.Unlock()
	return context.WithValue(ctx, slotKey{}, true), func() {
		d.mu.Lock()
		d.released++
		d.mu.Unlock()
	}, nil
}

func (d *slotDriver) Stop(ctx context.Context, _ string, _ time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stops++
	d.deadline, _ = ctx.Deadline()
	d.hadSlot = ctx.Value(slotKey{}) != nil
	if d.released > 0 {
		return errors.New("slot released before the stop ended")
	}
	return nil
}

func slotService(t *testing.T, drv stopruntime.Driver, grace, margin time.Duration) *stopruntime.Service {
	t.Helper()
	rdb := testredis.Start(t).Client()
	t.Cleanup(func() { _ = rdb.Close() })
	svc, err := stopruntime.New(runtimestore.New(rdb, runtimestore.Options{}), map[string]stopruntime.Driver{stopruntime.RuntimeDocker: drv},
		stopruntime.Options{StopGrace: grace, StopMargin: margin, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	_, err = svc.Register(context.Background(), stopruntime.Record{GameID: "g1", ContainerID: "c1", EngineEndpoint: "127.0.0.1:1", Runtime: stopruntime.RuntimeDocker})
	require.NoError(t, err)
	return svc
}

// The stop's deadline (grace + margin) starts once the slot is taken: time
// queued for a slot does not count against it.
func TestSlotIsTakenBeforeTheDeadlineStarts(t *testing.T) {
	drv := &slotDriver{queue: 300 * time.Millisecond}
	grace, margin := time.Second, 500*time.Millisecond
	svc := slotService(t, drv, grace, margin)
	res, err := svc.Handle(context.Background(), stopruntime.Input{GameID: "g1", Reason: "game_finished", OpSource: stopruntime.OpSourceAdmin, SourceRef: "j1"})
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, res.Outcome)
	drv.mu.Lock()
	defer drv.mu.Unlock()
	assert.Equal(t, 1, drv.stops)
	assert.True(t, drv.hadSlot, "Stop got the context that carries the slot")
	assert.Equal(t, 1, drv.released, "the slot is released once, after the stop")
	require.False(t, drv.deadline.IsZero(), "the stop is bounded")
	assert.False(t, drv.deadline.Before(drv.gotSlotAt.Add(grace+margin)),
		"deadline %s after the slot was taken; want at least grace + margin %s", drv.deadline.Sub(drv.gotSlotAt), grace+margin)
}

// A stop that cannot get a slot (its context ended) is transient: the
// record stays stopping, for the job's retry, and Stop is not called.
func TestNoSlotIsTransient(t *testing.T) {
	drv := &slotDriver{acquireErr: fmt.Errorf("wait for a slot: %w: %w", stopruntime.ErrTransient, context.Canceled)}
	svc := slotService(t, drv, time.Second, time.Second)
	_, err := svc.Handle(context.Background(), stopruntime.Input{GameID: "g1", Reason: "game_finished", OpSource: stopruntime.OpSourceAdmin, SourceRef: "j1"})
	require.ErrorIs(t, err, stopruntime.ErrTransient)
	assert.Equal(t, 0, drv.stops)
	rec, ok, err := svc.Get(context.Background(), "g1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, stopruntime.StatusStopping, rec.Status)
}
