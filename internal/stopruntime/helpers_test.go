package stopruntime_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/none"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// fakeDriver is a scripted runtime: each Stop call runs the next step (the
// last step repeats). It counts calls and can block until released.
type fakeDriver struct {
	mu    sync.Mutex
	steps []func(ctx context.Context) error
	calls []call
}

type call struct {
	id    string
	grace time.Duration
}

func (f *fakeDriver) Stop(ctx context.Context, id string, grace time.Duration) error {
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, call{id, grace})
	var step func(context.Context) error
	if len(f.steps) > 0 {
		step = f.steps[min(n, len(f.steps)-1)]
	}
	f.mu.Unlock()
	if step == nil {
		return nil
	}
	return step(ctx)
}

func (f *fakeDriver) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

func returns(err error) func(context.Context) error {
	return func(context.Context) error { return err }
}

// blocker is a step that signals it was entered and waits for release.
type blocker struct {
	entered chan struct{}
	release chan struct{}
}

func newBlocker() *blocker {
	return &blocker{entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (b *blocker) step(ctx context.Context) error {
	b.entered <- struct{}{}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// clock is a settable test clock.
type clock struct{ ms atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(1764160000000)
	return c
}
func (c *clock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func (c *clock) MS() int64               { return c.ms.Load() }

type env struct {
	srv    *testredis.Server
	rdb    *redis.Client
	store  *runtimestore.Store
	docker *fakeDriver
	clock  *clock
	svc    *stopruntime.Service
}

func newEnv(t *testing.T) *env {
	return newEnvWith(t, nil)
}

// newEnvWith builds a service on a real redis-server; wrap, when set, wraps
// the Redis store (to inject faults or count calls).
func newEnvWith(t *testing.T, wrap func(stopruntime.Store) stopruntime.Store) *env {
	t.Helper()
	srv := testredis.Start(t)
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	e := &env{srv: srv, rdb: rdb, store: runtimestore.New(rdb, runtimestore.Options{}), docker: &fakeDriver{}, clock: newClock()}
	var st stopruntime.Store = e.store
	if wrap != nil {
		st = wrap(st)
	}
	svc, err := stopruntime.New(st, map[string]stopruntime.Driver{
		stopruntime.RuntimeDocker: e.docker,
		stopruntime.RuntimeNone:   none.Driver{},
	}, stopruntime.Options{
		StopGrace: 7 * time.Second, Now: e.clock.Now, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	e.svc = svc
	return e
}

func (e *env) register(t *testing.T, gameID, status, containerID string) stopruntime.Record {
	t.Helper()
	rec, err := e.svc.Register(context.Background(), stopruntime.Record{
		GameID: gameID, Status: status, ContainerID: containerID,
		EngineEndpoint: "10.0.3.17:7000", Runtime: stopruntime.RuntimeDocker,
	})
	require.NoError(t, err)
	return rec
}

func (e *env) get(t *testing.T, gameID string) stopruntime.Record {
	t.Helper()
	rec, ok, err := e.svc.Get(context.Background(), gameID)
	require.NoError(t, err)
	require.True(t, ok, "record of %s", gameID)
	return rec
}

func (e *env) ops(t *testing.T) []map[string]any {
	t.Helper()
	msgs, err := e.rdb.XRange(context.Background(), "rtmanager:operations", "-", "+").Result()
	require.NoError(t, err)
	out := make([]map[string]any, len(msgs))
	for i, m := range msgs {
		out[i] = m.Values
	}
	return out
}

func job(gameID, ref string) stopruntime.Input {
	return stopruntime.Input{GameID: gameID, Reason: "game_finished", OpSource: stopruntime.OpSourceLobbyStream, SourceRef: ref}
}

// flakyFinish fails FinishStop once without writing: a crash between the
// driver's Stop and the final record write.
type flakyFinish struct {
	stopruntime.Store
	failed atomic.Bool
}

func (f *flakyFinish) FinishStop(ctx context.Context, req stopruntime.FinishRequest, op stopruntime.Operation) (stopruntime.FinishResponse, error) {
	if f.failed.CompareAndSwap(false, true) {
		return stopruntime.FinishResponse{}, errors.New("simulated crash before finish")
	}
	return f.Store.FinishStop(ctx, req, op)
}

// countingStore counts calls that would build a record key.
type countingStore struct {
	stopruntime.Store
	keyed atomic.Int64
}

func (c *countingStore) BeginStop(ctx context.Context, r stopruntime.BeginRequest) (stopruntime.BeginResponse, error) {
	c.keyed.Add(1)
	return c.Store.BeginStop(ctx, r)
}

func (c *countingStore) Register(ctx context.Context, r stopruntime.Record) (stopruntime.Record, error) {
	c.keyed.Add(1)
	return c.Store.Register(ctx, r)
}

func (c *countingStore) Get(ctx context.Context, id string) (stopruntime.Record, bool, error) {
	c.keyed.Add(1)
	return c.Store.Get(ctx, id)
}
