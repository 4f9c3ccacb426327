package redisstream_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

// continueWith is a handler that hands the rest of each job to wait, then
// answers it from the continuation.
func continueWith(wait func(ctx context.Context, game string) error) func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
	return func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, ok := redisstream.DeliveryFrom(ctx)
		if !ok {
			return errors.New("no delivery in context")
		}
		d.Continue(func(ctx context.Context) error {
			if err := wait(ctx, string(msg.Payload.GameId)); err != nil {
				return err
			}
			return answer(ctx, c, msg)
		})
		return nil
	}
}

func addJobs(t *testing.T, rdb redis.UniversalClient, n int, game func(i int) string) {
	t.Helper()
	pipe := rdb.Pipeline()
	for i := 0; i < n; i++ {
		pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: jobs, Values: []string{"game_id", game(i), "reason", "game_finished", "requested_at_ms", strconv.Itoa(i)}})
	}
	_, err := pipe.Exec(context.Background())
	require.NoError(t, err)
}

// A continuation frees its worker: with one worker and many jobs waiting in
// continuations, a job of another game is answered at once; and the waiting
// ones are committed, with their publications, when they end.
func TestContinuationFreesTheWorker(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	release := make(chan struct{})
	var waiting atomic.Int32
	startApp(t, rdb, fastOptions(), 1, continueWith(func(ctx context.Context, game string) error {
		if strings.HasPrefix(game, "slow") {
			waiting.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}))
	addJobs(t, rdb, 50, func(i int) string { return fmt.Sprintf("slow%d", i) })
	addJob(t, rdb, "game_id", "fast", "reason", "game_finished")
	waitLen(t, rdb, results, 1)
	assert.Equal(t, "fast", streamEntries(t, rdb, results)[0].Values["game_id"])
	assert.Equal(t, int32(50), waiting.Load(), "every slow job waits in a continuation")
	assert.Equal(t, int64(50), pendingCount(t, rdb), "the waiting jobs are pending until they end")

	close(release)
	waitLen(t, rdb, results, 51)
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 0 }, 10*time.Second, 10*time.Millisecond)
	assert.Len(t, streamEntries(t, rdb, results), 51)
}

// Entries of one game stay in stream order and never overlap, continuation
// included, while games run in parallel.
func TestContinuationKeepsPartitionOrder(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	const games, perGame = 12, 8
	var mu sync.Mutex
	active := map[string]bool{}
	seen := map[string][]int64{}
	var maxParallel, parallel atomic.Int32
	startApp(t, rdb, fastOptions(), 2, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		g := string(msg.Payload.GameId)
		mu.Lock()
		if active[g] {
			mu.Unlock()
			t.Errorf("game %s handled while its previous job still ran", g)
			return nil
		}
		active[g] = true
		seen[g] = append(seen[g], *msg.Payload.RequestedAtMs)
		mu.Unlock()
		d, _ := redisstream.DeliveryFrom(ctx)
		d.Continue(func(ctx context.Context) error {
			n := parallel.Add(1)
			for m := maxParallel.Load(); n > m && !maxParallel.CompareAndSwap(m, n); m = maxParallel.Load() {
			}
			time.Sleep(20 * time.Millisecond)
			parallel.Add(-1)
			mu.Lock()
			active[g] = false
			mu.Unlock()
			return answer(ctx, c, msg)
		})
		return nil
	})
	addJobs(t, rdb, games*perGame, func(i int) string { return fmt.Sprintf("g%d", i%games) })
	waitLen(t, rdb, results, games*perGame)
	mu.Lock()
	defer mu.Unlock()
	for k := 0; k < games; k++ {
		got := seen[fmt.Sprintf("g%d", k)]
		require.Len(t, got, perGame)
		for i := 1; i < len(got); i++ {
			require.Less(t, got[i-1], got[i], "game g%d out of order: %v", k, got)
		}
	}
	assert.Greater(t, maxParallel.Load(), int32(2), "more games waited at once than there are workers")
	res := streamEntries(t, rdb, results)
	last := map[string]string{}
	for _, m := range res {
		g := m.Values["game_id"].(string)
		id := m.Values["job_id"].(string)
		if prev, ok := last[g]; ok {
			a, _ := strconv.ParseInt(strings.Split(prev, "-")[0], 10, 64)
			b, _ := strconv.ParseInt(strings.Split(id, "-")[0], 10, 64)
			assert.LessOrEqual(t, a, b, "results of %s out of stream order", g)
		}
		last[g] = id
	}
}

// An entry in a continuation that outlives ClaimIdle is refreshed like one
// in a handler: a second consumer, eager to claim, never takes it.
func TestContinuationIsNotClaimedByOthers(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.ClaimIdle, opts.ClaimInterval = 300*time.Millisecond, 50*time.Millisecond
	var calls atomic.Int32
	release := make(chan struct{})
	h := continueWith(func(ctx context.Context, game string) error {
		calls.Add(1)
		<-release
		return nil
	})
	opts.Consumer = "first"
	startApp(t, rdb, opts, 1, h)
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	require.Eventually(t, func() bool { return calls.Load() == 1 }, 5*time.Second, 10*time.Millisecond)
	opts.Consumer = "second"
	startApp(t, rdb, opts, 1, h)
	// Five times ClaimIdle: the second consumer looks every 50 ms.
	time.Sleep(1500 * time.Millisecond)
	assert.Equal(t, int32(1), calls.Load(), "claimed while its continuation waited")
	p, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{Stream: jobs, Group: group, Start: "-", End: "+", Count: 10}).Result()
	require.NoError(t, err)
	require.Len(t, p, 1)
	assert.Equal(t, "first", p[0].Consumer)
	close(release)
	waitLen(t, rdb, results, 1)
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 0 }, 5*time.Second, 10*time.Millisecond)
	assert.Len(t, streamEntries(t, rdb, results), 1)
}

// A continuation's error is a Nak: its publications are dropped and the job
// is retried; a panic is an error too.
func TestContinuationErrorAndPanicAreRetried(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	var calls atomic.Int32
	startApp(t, rdb, fastOptions(), 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		d.Continue(func(ctx context.Context) error {
			require.NoError(t, answer(ctx, c, msg))
			switch calls.Add(1) {
			case 1:
				return errors.New("runtime unreachable")
			case 2:
				panic("driver bug")
			}
			return nil
		})
		return nil
	})
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	waitLen(t, rdb, results, 1)
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 0 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, int32(3), calls.Load())
	assert.Len(t, streamEntries(t, rdb, results), 1, "the failed attempts published nothing")
}

// Entries in a continuation do not fill the prefetch: with a prefetch of 2,
// twenty jobs wait at once.
func TestContinuationsDoNotCountAgainstPrefetch(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.ReadCount, opts.Prefetch = 2, 2
	release := make(chan struct{})
	var waiting atomic.Int32
	startApp(t, rdb, opts, 1, continueWith(func(ctx context.Context, game string) error {
		waiting.Add(1)
		<-release
		return nil
	}))
	addJobs(t, rdb, 20, func(i int) string { return fmt.Sprintf("g%d", i) })
	require.Eventually(t, func() bool { return waiting.Load() == 20 }, 10*time.Second, 10*time.Millisecond,
		"only %d jobs waited at once", waiting.Load())
	close(release)
	waitLen(t, rdb, results, 20)
}

// MaxContinuing bounds the continuations: beyond it a handler keeps its
// worker until a continuation ends, and nothing is lost.
func TestMaxContinuingBoundsContinuations(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.MaxContinuing = 3
	release := make(chan struct{})
	var waiting, most atomic.Int32
	startApp(t, rdb, opts, 2, continueWith(func(ctx context.Context, game string) error {
		n := waiting.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-release
		waiting.Add(-1)
		return nil
	}))
	addJobs(t, rdb, 10, func(i int) string { return fmt.Sprintf("g%d", i) })
	require.Eventually(t, func() bool { return waiting.Load() == 3 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	assert.Equal(t, int32(3), most.Load(), "more continuations than MaxContinuing")
	close(release)
	waitLen(t, rdb, results, 10)
	assert.Equal(t, int32(3), most.Load())
}

// Close waits for continuations while its context lasts and commits those
// that end; the ones still waiting at the deadline write nothing and stay
// pending, and the next consumer answers each of them exactly once.
func TestCloseLeavesUnfinishedContinuationsPending(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	quick := make(chan struct{})
	var waiting atomic.Int32
	a := startApp(t, rdb, fastOptions(), 2, continueWith(func(ctx context.Context, game string) error {
		waiting.Add(1)
		if strings.HasPrefix(game, "quick") {
			<-quick
			return nil
		}
		<-ctx.Done() // a runtime that outlives the shutdown
		return ctx.Err()
	}))
	addJobs(t, rdb, 5, func(i int) string { return fmt.Sprintf("quick%d", i) })
	addJobs(t, rdb, 20, func(i int) string { return fmt.Sprintf("slow%d", i) })
	require.Eventually(t, func() bool { return waiting.Load() == 25 }, 10*time.Second, 10*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.broker.Close(ctx) }()
	time.Sleep(100 * time.Millisecond)
	close(quick) // ends during Close: committed
	_ = <-done   // its error (the deadline) is what the assertions below look at
	for _, c := range a.ctrls {
		c.Close(context.Background())
	}
	waitLen(t, rdb, results, 5)
	time.Sleep(300 * time.Millisecond) // give a wrong late commit the time to show
	res := streamEntries(t, rdb, results)
	require.Len(t, res, 5, "only the continuations that ended were answered")
	assert.Equal(t, int64(20), pendingCount(t, rdb))
	n, _ := rdb.XLen(context.Background(), dead).Result()
	assert.Zero(t, n, "the shutdown dead-lettered nothing")

	// The next start (after the entries went idle) answers each once.
	opts := fastOptions()
	opts.Consumer = "restarted"
	startApp(t, rdb, opts, 2, continueWith(func(context.Context, string) error { return nil }))
	waitLen(t, rdb, results, 25)
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 0 }, 10*time.Second, 10*time.Millisecond)
	seen := map[string]int{}
	for _, m := range streamEntries(t, rdb, results) {
		seen[m.Values["job_id"].(string)]++
	}
	assert.Len(t, seen, 25)
	for id, n := range seen {
		assert.Equal(t, 1, n, id)
	}
}

// With many more entries held than committed at once (stops waiting), the
// commit reads each entry's owner on its own: an entry of this consumer is
// committed, one another consumer took over meanwhile is not.
func TestCommitWhileManyWaitChecksOwnershipPerEntry(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	gates := map[string]chan struct{}{}
	for _, g := range []string{"quick", "stolen"} {
		gates[g] = make(chan struct{})
	}
	forever := make(chan struct{})
	t.Cleanup(func() { close(forever) })
	var waiting atomic.Int32
	opts := fastOptions()
	opts.ClaimIdle = time.Hour // nothing claimed but by hand
	startApp(t, rdb, opts, 2, continueWith(func(ctx context.Context, game string) error {
		waiting.Add(1)
		gate, ok := gates[game]
		if !ok {
			gate = forever
		}
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}))
	addJobs(t, rdb, 40, func(i int) string { return fmt.Sprintf("wait%d", i) })
	quick := addJob(t, rdb, "game_id", "quick", "reason", "game_finished")
	stolen := addJob(t, rdb, "game_id", "stolen", "reason", "game_finished")
	require.Eventually(t, func() bool { return waiting.Load() == 42 }, 10*time.Second, 10*time.Millisecond)

	require.NoError(t, rdb.XClaim(ctx, &redis.XClaimArgs{Stream: jobs, Group: group, Consumer: "other", Messages: []string{stolen}}).Err())
	close(gates["stolen"])
	close(gates["quick"])
	waitLen(t, rdb, results, 1)
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 41 }, 5*time.Second, 10*time.Millisecond)
	time.Sleep(200 * time.Millisecond) // room for a wrong commit of the stolen entry
	res := streamEntries(t, rdb, results)
	require.Len(t, res, 1)
	assert.Equal(t, quick, res[0].Values["job_id"])
	p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: jobs, Group: group, Start: stolen, End: stolen, Count: 1}).Result()
	require.NoError(t, err)
	require.Len(t, p, 1, "the stolen entry is left to its new owner")
	assert.Equal(t, "other", p[0].Consumer)
}
