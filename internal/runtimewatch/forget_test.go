package runtimewatch_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/runtimewatch"
	"galaxy/rtmanager/internal/stopruntime"
)

// countingStore counts the watch's transition scripts.
type countingStore struct {
	*runtimestore.Store
	transitions atomic.Int64
}

func (s *countingStore) Transition(ctx context.Context, eventsKey string, maxLen int64, c runtimestore.Change) (string, error) {
	s.transitions.Add(1)
	return s.Store.Transition(ctx, eventsKey, maxLen, c)
}

// countingDriver counts inspections; failWait makes every exit wait fail
// (as one whose driver could not tell).
type countingDriver struct {
	runtimewatch.Inspector
	inspections atomic.Int64
	failWait    bool
}

func (d *countingDriver) Inspect(ctx context.Context, id string) (runtimes.State, error) {
	d.inspections.Add(1)
	return d.Inspector.Inspect(ctx, id)
}

func (d *countingDriver) WaitExit(ctx context.Context, id string) (runtimes.State, error) {
	if d.failWait {
		return runtimes.State{}, errors.New("cannot wait")
	}
	return d.Inspector.(runtimewatch.ExitWaiter).WaitExit(ctx, id)
}

// A game forgotten when its stop began costs the watch no transition when
// its engine ends: the stop job records the end. Without Forget the exit
// wait wakes and runs the script, which finds the record stopping.
func TestForgottenGameCostsNoTransition(t *testing.T) {
	e := setup(t)
	store := &countingStore{Store: e.store}
	id := e.sleeper(t, "f1")
	e.register(t, "f1", id, "")
	w := e.watcherOn(t, store, func(o *runtimewatch.Options) {
		o.Drivers = map[string]runtimewatch.Inspector{stopruntime.RuntimeProcess: e.drv}
		o.ReconcileInterval = 100 * time.Millisecond
		o.ProbeInterval = -1
	})
	e.settle(t, 1)

	_, err := e.store.BeginStop(context.Background(), stopruntime.BeginRequest{GameID: "f1", JobID: "7-0", NowMS: 10, TakeoverMS: 60000})
	require.NoError(t, err)
	w.Forget("f1")
	kill(t, id)
	e.settle(t, 1)
	assert.Zero(t, store.transitions.Load(), "the stop's end is not the watch's to write")
	assert.Empty(t, e.events(t))
	assert.Equal(t, "stopping", e.status(t, "f1").Status)

	var nilWatcher *runtimewatch.Watcher
	nilWatcher.Forget("f1") // no watch (--watch=false): nothing to forget
}

// The reconciliation inspects only the games no exit wait covers: a
// running wait sees the end first, and a wait that failed leaves its game
// to the reconciliation.
func TestReconcileInspectsOnlyGamesWithoutAWait(t *testing.T) {
	for _, failWait := range []bool{false, true} {
		e := setup(t)
		drv := &countingDriver{Inspector: e.drv, failWait: failWait}
		for _, g := range []string{"w1", "w2", "w3"} {
			e.register(t, g, e.sleeper(t, g), "")
		}
		e.watcher(t, func(o *runtimewatch.Options) {
			o.Drivers = map[string]runtimewatch.Inspector{stopruntime.RuntimeProcess: drv}
			o.ReconcileInterval = 50 * time.Millisecond
		})
		e.settle(t, 2)
		if failWait {
			assert.GreaterOrEqual(t, drv.inspections.Load(), int64(3), "games whose wait failed are inspected")
		} else {
			assert.Zero(t, drv.inspections.Load(), "every game has a running exit wait")
		}
	}
}

// heldStore holds the first reconciliation between reading its list and
// going on, so a test can act in between.
type heldStore struct {
	*countingStore
	listed, resume chan struct{}
	once           sync.Once
}

func (s *heldStore) Watched(ctx context.Context, statuses ...string) ([]stopruntime.Record, error) {
	recs, err := s.countingStore.Watched(ctx, statuses...)
	s.once.Do(func() {
		close(s.listed)
		<-s.resume
	})
	return recs, err
}

// A reconciliation that listed a game as running before its stop began
// (and Forget) does not watch it again: its end would cost a transition.
func TestForgetDuringReconcileHolds(t *testing.T) {
	e := setup(t)
	store := &heldStore{countingStore: &countingStore{Store: e.store}, listed: make(chan struct{}), resume: make(chan struct{})}
	id := e.sleeper(t, "f2")
	e.register(t, "f2", id, "")
	w := e.watcherOn(t, store, func(o *runtimewatch.Options) {
		o.Drivers = map[string]runtimewatch.Inspector{stopruntime.RuntimeProcess: e.drv}
		o.ReconcileInterval = time.Second
		o.ProbeInterval = -1
	})
	select {
	case <-store.listed:
	case <-time.After(10 * time.Second):
		t.Fatal("no reconciliation")
	}
	_, err := e.store.BeginStop(context.Background(), stopruntime.BeginRequest{GameID: "f2", JobID: "7-0", NowMS: 10, TakeoverMS: 60000})
	require.NoError(t, err)
	w.Forget("f2")
	// Ended before the reconciliation goes on: a wait it started would
	// report at once, a second after which the next one drops the game.
	kill(t, id)
	close(store.resume)
	e.settle(t, 1)
	assert.Zero(t, store.transitions.Load())
	assert.Equal(t, "stopping", e.status(t, "f2").Status)
}

// waitRecorder records how each exit wait ended: by its runtime's end or
// by its context.
type waitRecorder struct {
	runtimewatch.Inspector
	ended, cancelled atomic.Int64
}

func (d *waitRecorder) WaitExit(ctx context.Context, id string) (runtimes.State, error) {
	st, err := d.Inspector.(runtimewatch.ExitWaiter).WaitExit(ctx, id)
	if ctx.Err() != nil {
		d.cancelled.Add(1)
	} else {
		d.ended.Add(1)
	}
	return st, err
}

// Forget leaves the game's exit wait to end with the runtime instead of
// waking it at once: in a burst of stops those wakes crowd the workers.
// The wait's end then reports nothing.
func TestForgetLeavesTheWaitToTheRuntimesEnd(t *testing.T) {
	e := setup(t)
	store := &countingStore{Store: e.store}
	drv := &waitRecorder{Inspector: e.drv}
	id := e.sleeper(t, "f3")
	e.register(t, "f3", id, "")
	w := e.watcherOn(t, store, func(o *runtimewatch.Options) {
		o.Drivers = map[string]runtimewatch.Inspector{stopruntime.RuntimeProcess: drv}
		o.ReconcileInterval = time.Hour // the first only
		o.ProbeInterval = -1
	})
	require.Eventually(t, func() bool { return e.recs.Load() >= 1 }, 10*time.Second, time.Millisecond)

	_, err := e.store.BeginStop(context.Background(), stopruntime.BeginRequest{GameID: "f3", JobID: "7-0", NowMS: 10, TakeoverMS: 60000})
	require.NoError(t, err)
	w.Forget("f3")
	require.Never(t, func() bool { return drv.cancelled.Load() > 0 || drv.ended.Load() > 0 }, 300*time.Millisecond, time.Millisecond,
		"Forget woke the wait")
	kill(t, id)
	require.Eventually(t, func() bool { return drv.ended.Load() == 1 }, 10*time.Second, time.Millisecond)
	// The report follows the wait's end at once.
	require.Never(t, func() bool { return store.transitions.Load() > 0 }, 300*time.Millisecond, time.Millisecond)
	assert.Zero(t, drv.cancelled.Load())
	assert.Empty(t, e.events(t))
}
