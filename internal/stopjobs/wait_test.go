package stopjobs_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/runtimes/none"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/service"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// gateDriver is a runtime that takes until the gate opens (or ctx ends) to
// stop, as an engine saving its game does.
type gateDriver struct {
	entered atomic.Int32
	gate    chan struct{}
}

func (g *gateDriver) Stop(ctx context.Context, _ string, _ time.Duration) error {
	g.entered.Add(1)
	select {
	case <-g.gate:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", stopruntime.ErrTransient, ctx.Err())
	}
}

// pipeline runs the real pipeline with the given drivers, by runtime.
func pipeline(t *testing.T, rdb redis.UniversalClient, drivers map[string]stopruntime.Driver, workers int, bo redisstream.Options) (*service.Service, *stopruntime.Service) {
	t.Helper()
	svc, err := stopruntime.New(runtimestore.New(rdb, runtimestore.Options{}), drivers, stopruntime.Options{})
	require.NoError(t, err)
	bo.Block = 100 * time.Millisecond
	bo.RetryBackoff, bo.MaxRetryBackoff = 10*time.Millisecond, 50*time.Millisecond
	run, err := service.Start(context.Background(), rdb, service.Options{Stopper: svc, Workers: workers, Broker: bo})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = run.Close(ctx)
	})
	return run, svc
}

func registerAll(t *testing.T, svc *stopruntime.Service, runtime string, games ...string) {
	for _, g := range games {
		_, err := svc.Register(context.Background(), stopruntime.Record{GameID: g, Runtime: runtime, ContainerID: "c-" + g})
		require.NoError(t, err)
	}
}

func addStops(t *testing.T, rdb redis.UniversalClient, games ...string) {
	pipe := rdb.Pipeline()
	for _, g := range games {
		pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: jobs, Values: []string{"game_id", g, "reason", "platform_shutdown"}})
	}
	_, err := pipe.Exec(context.Background())
	require.NoError(t, err)
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d", prefix, i)
	}
	return out
}

// Stops waiting for their runtimes hold no worker: with two workers and a
// hundred games waiting to exit, a game whose runtime stops at once is
// answered while they all still wait; then each waiting one is answered.
func TestSlowStopsDoNotDelayOtherGames(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	slow := &gateDriver{gate: make(chan struct{})}
	_, svc := pipeline(t, rdb, map[string]stopruntime.Driver{"docker": slow, "none": none.Driver{}}, 2, redisstream.Options{})
	games := names("slow", 100)
	registerAll(t, svc, "docker", games...)
	registerAll(t, svc, "none", "fast")

	addStops(t, rdb, games...)
	require.Eventually(t, func() bool { return slow.entered.Load() == 100 }, 20*time.Second, 10*time.Millisecond,
		"only %d stops wait at once with 2 workers", slow.entered.Load())
	addStops(t, rdb, "fast")
	e := &env{rdb: rdb, svc: svc}
	res := readValues(t, rdb, results, 1)
	assert.Equal(t, "fast", res[0]["game_id"])
	assert.Equal(t, "success", res[0]["outcome"])

	close(slow.gate)
	res = readValues(t, rdb, results, 101)
	e.settle(t)
	require.Len(t, readValues(t, rdb, results, 101), 101, "one result per job")
	for _, g := range games {
		rec, ok, err := svc.Get(context.Background(), g)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, stopruntime.StatusStopped, rec.Status, g)
	}
	for _, r := range res {
		assert.Equal(t, "success", r["outcome"])
		assert.Empty(t, r["error_code"])
	}
}

// A shutdown while stops wait for their runtimes answers none of them and
// dead-letters nothing: each stays pending and stopping, owned by its job.
// The next start resumes each and answers it exactly once.
func TestShutdownDuringWaitsResumesEachStopOnce(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	slow := &gateDriver{gate: make(chan struct{})}
	// The last delivery: a shutdown must not be taken for a failure.
	run, svc := pipeline(t, rdb, map[string]stopruntime.Driver{"docker": slow}, 2, redisstream.Options{MaxDeliveries: 1})
	games := names("g", 30)
	registerAll(t, svc, "docker", games...)
	addStops(t, rdb, games...)
	require.Eventually(t, func() bool { return slow.entered.Load() == 30 }, 20*time.Second, 10*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	require.Error(t, run.Close(ctx), "the waits outlive the close deadline")
	time.Sleep(300 * time.Millisecond) // room for a wrong late answer
	n, _ := rdb.XLen(context.Background(), results).Result()
	assert.Zero(t, n, "no answer for an interrupted stop")
	n, _ = rdb.XLen(context.Background(), dead).Result()
	assert.Zero(t, n, "no dead letter for an interrupted stop")
	p, err := rdb.XPending(context.Background(), jobs, "rtmanager").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(30), p.Count)
	for _, g := range games {
		rec, _, err := svc.Get(context.Background(), g)
		require.NoError(t, err)
		assert.Equal(t, stopruntime.StatusStopping, rec.Status, g)
	}

	// Restart: the runtimes exit at once now.
	fast := &gateDriver{gate: make(chan struct{})}
	close(fast.gate)
	_, svc2 := pipeline(t, rdb, map[string]stopruntime.Driver{"docker": fast}, 2, redisstream.Options{
		Consumer: "restarted", ClaimIdle: 300 * time.Millisecond, ClaimInterval: 50 * time.Millisecond, MaxDeliveries: 5,
	})
	e := &env{rdb: rdb, svc: svc2}
	e.settle(t)
	res := readValues(t, rdb, results, 30)
	require.Len(t, res, 30)
	seen := map[string]int{}
	for _, r := range res {
		seen[r["game_id"].(string)]++
		assert.Equal(t, "success", r["outcome"])
		assert.Empty(t, r["error_code"], "the stop was resumed, not replayed")
	}
	for _, g := range games {
		assert.Equal(t, 1, seen[g], g)
		rec, _, err := svc2.Get(context.Background(), g)
		require.NoError(t, err)
		assert.Equal(t, stopruntime.StatusStopped, rec.Status, g)
	}
	assert.Equal(t, int32(30), fast.entered.Load(), "each stop resumed once")
}

// readValues waits for n entries of a stream and returns their fields.
func readValues(t *testing.T, rdb redis.UniversalClient, stream string, n int) []map[string]any {
	t.Helper()
	var msgs []redis.XMessage
	require.Eventually(t, func() bool {
		msgs, _ = rdb.XRange(context.Background(), stream, "-", "+").Result()
		return len(msgs) >= n
	}, 20*time.Second, 10*time.Millisecond, "waiting for %d entries on %s", n, stream)
	out := make([]map[string]any, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m.Values)
	}
	return out
}
