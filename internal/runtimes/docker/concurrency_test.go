package docker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testengine"
	"galaxy/rtmanager/internal/testredis"
)

// runMany starts n test engines at once (a few at a time: Podman's
// create costs CPU) and removes them when the test ends.
func runMany(t *testing.T, e *testengine.Engine, prefix string, n int, spec testengine.Spec) []testengine.Container {
	t.Helper()
	out := make([]testengine.Container, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for i := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			s := spec
			s.Game = fmt.Sprintf("%s-%d", prefix, i)
			out[i] = e.MustRun(t, s)
		}()
	}
	wg.Wait()
	return out
}

// stopAll stops every container at once, each in its own goroutine, as
// the stops of a mass stop do, and returns their errors.
func stopAll(d *docker.Driver, cs []testengine.Container, grace time.Duration) []error {
	errs := make([]error, len(cs))
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.Stop(context.Background(), c.ID, grace)
		}()
	}
	wg.Wait()
	return errs
}

// With concurrency N the engine never has more than N of the driver's
// requests in flight, however many stops run at once; the rest wait.
func TestConcurrencyBoundsRequestsAtTheEngine(t *testing.T) {
	t.Parallel()
	e := testengine.Require(t)
	p := e.NewCountingProxy(t)
	const n = 4
	d := newDriver(t, docker.Options{Host: p.Host(), Concurrency: n})
	cs := runMany(t, e, "g-bound", 24, testengine.Spec{TermDelay: 500 * time.Millisecond})

	done := make(chan []error, 1)
	go func() { done <- stopAll(d, cs, 10*time.Second) }()
	require.Eventually(t, func() bool { return d.InFlight() == n && d.Waiting() > 0 }, 30*time.Second, 5*time.Millisecond,
		"the slots fill and the other stops wait")
	for i, err := range <-done {
		require.NoError(t, err, cs[i].Game)
	}
	assert.Equal(t, n, p.MaxInFlight(), "never more than %d requests at the engine, and all %d used", n, n)
	assert.Len(t, p.RequestsWith("/stop"), len(cs))
	assert.Zero(t, d.InFlight())
	assert.Zero(t, d.Waiting())
	for _, c := range cs {
		assert.False(t, running(t, e, c.ID), c.Game)
	}
}

// The transport keeps a connection per slot: waves of N concurrent
// requests reuse the first wave's connections (Go's default keeps 2 idle
// per host, so each wave would open N-2 new ones).
func TestConnectionsAreReused(t *testing.T) {
	t.Parallel()
	e := testengine.Require(t)
	p := e.NewCountingProxy(t)
	const n = 8
	d := newDriver(t, docker.Options{Host: p.Host(), Concurrency: n})
	// Held at the proxy for a while, the requests of a wave overlap.
	p.SetDelay(200 * time.Millisecond)
	const waves = 4
	for range waves {
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := d.Find(context.Background(), "g-no-such-game")
				assert.NoError(t, err)
			}()
		}
		wg.Wait()
	}
	require.Len(t, p.RequestsWith("/containers/json"), waves*n)
	// n for the first wave, a little slack for a connection not yet back
	// in the idle pool when the next wave starts.
	assert.LessOrEqual(t, p.Conns(), n+3, "connections opened for %d waves of %d requests", waves, n)
	t.Logf("%d connections for %d waves of %d concurrent requests", p.Conns(), waves, n)
}

// A stop queued behind others still gets its full grace period at the
// daemon, and the stop's deadline (grace + margin) starts only when it has
// its slot: with one slot, held by another operation for longer than the
// margin, a SIGTERM-ignoring engine is still stopped, killed after its
// grace, and answered success. (Were the deadline started before the
// wait, less than the grace would be left of it.)
func TestQueuedStopGetsItsFullGrace(t *testing.T) {
	t.Parallel()
	e := testengine.Require(t)
	p := e.NewCountingProxy(t)
	d := newDriver(t, docker.Options{Host: p.Host(), Concurrency: 1})
	rdb := testredis.Start(t).Client()
	t.Cleanup(func() { _ = rdb.Close() })
	// A wide margin: the engine's stop itself takes seconds on a loaded
	// machine.
	const grace, margin = 2 * time.Second, 5 * time.Second
	svc, err := stopruntime.New(runtimestore.New(rdb, runtimestore.Options{}), map[string]stopruntime.Driver{stopruntime.RuntimeDocker: d},
		stopruntime.Options{StopGrace: grace, StopMargin: margin, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	c := e.MustRun(t, testengine.Spec{Game: "g-queued", IgnoreTerm: true})
	_, err = svc.Register(context.Background(), stopruntime.Record{GameID: c.Game, ContainerID: c.ID, EngineEndpoint: c.Addr, Runtime: stopruntime.RuntimeDocker})
	require.NoError(t, err)

	_, release, err := d.AcquireSlot(context.Background())
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() {
		res, err := svc.Handle(context.Background(), stopruntime.Input{GameID: c.Game, Reason: "game_finished", OpSource: stopruntime.OpSourceAdmin, SourceRef: "job-1"})
		if err == nil && res.Outcome != stopruntime.OutcomeSuccess {
			err = fmt.Errorf("%s: %s %s", res.Outcome, res.ErrorCode, res.ErrorMessage)
		}
		done <- err
	}()
	require.Eventually(t, func() bool { return d.Waiting() == 1 }, 20*time.Second, 5*time.Millisecond)
	t0 := time.Now()
	// The other operation holds the slot past the margin (setting up the
	// queue, not asserting anything).
	time.Sleep(margin + time.Second)
	require.Empty(t, p.RequestsWith("/stop"), "nothing sent while queued")
	release()
	require.NoError(t, <-done, "queued longer than the margin, still within its deadline")
	took := time.Since(t0)

	assert.Equal(t, 137, exitCode(t, e, c.ID), "killed after its grace")
	stops := p.RequestsWith("/containers/" + c.ID + "/stop")
	require.Len(t, stops, 1)
	assert.GreaterOrEqual(t, stops[0].Took, grace-100*time.Millisecond, "the daemon gave it its grace")
	t.Logf("queued %s, then stopped: the stop request took %s (grace %s, margin %s)", margin+time.Second, stops[0].Took, grace, margin)
	assert.Greater(t, took, margin+grace, "queued and stopped after its grace")
}

// A stop waiting for a slot ends when its context does (transient), sends
// nothing to the engine, and leaves the slot count right.
func TestCancelledWaiterIsFreed(t *testing.T) {
	t.Parallel()
	e := testengine.Require(t)
	p := e.NewCountingProxy(t)
	d := newDriver(t, docker.Options{Host: p.Host(), Concurrency: 1})
	c := e.MustRun(t, testengine.Spec{Game: "g-waiter"})

	_, release, err := d.AcquireSlot(context.Background())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Stop(ctx, c.ID, time.Second) }()
	require.Eventually(t, func() bool { return d.Waiting() == 1 }, 10*time.Second, 5*time.Millisecond)
	cancel()
	select {
	case err := <-done:
		require.ErrorIs(t, err, stopruntime.ErrTransient)
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting stop did not end with its context")
	}
	assert.Zero(t, d.Waiting())
	assert.Equal(t, 1, d.InFlight(), "the holder keeps its slot")
	assert.Empty(t, p.RequestsWith("/stop"), "nothing reached the engine")
	assert.True(t, running(t, e, c.ID))

	release()
	release() // a second release is harmless
	assert.Zero(t, d.InFlight())
	require.NoError(t, d.Stop(context.Background(), c.ID, time.Second))
	assert.False(t, running(t, e, c.ID))
}
