package redisstream_test

import (
	"context"
	"fmt"
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

// setOOM makes Redis refuse every write (maxmemory below what it uses, no
// eviction), or lifts that.
func setOOM(t *testing.T, rdb redis.UniversalClient, on bool) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err())
	limit := "0"
	if on {
		limit = "1"
	}
	require.NoError(t, rdb.ConfigSet(ctx, "maxmemory", limit).Err())
	if on {
		err := rdb.Set(ctx, "oom-check", "x", 0).Err()
		require.Error(t, err)
		require.Contains(t, err.Error(), "OOM ")
	}
}

// A handler whose store write fails with OOM is not charged a delivery:
// dispatch pauses like in an outage, and the job goes on with delivery 1
// once Redis accepts writes again. (OOM used to use up the deliveries: the
// job ended failure/internal within seconds.)
func TestRedisOOMInHandlerChargesNoDelivery(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.MaxDeliveries = 2
	var calls atomic.Int32
	counts := make(chan int64, 100)
	inHandler := make(chan struct{})
	oom := make(chan struct{})
	startApp(t, rdb, opts, 2, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		counts <- d.Count()
		if calls.Add(1) == 1 {
			close(inHandler)
			<-oom
		}
		// What the orchestrator does first: a write to its store.
		if err := rdb.Set(ctx, "runtime:record:"+string(msg.Payload.GameId), "stopping", 0).Err(); err != nil {
			return fmt.Errorf("begin stop: %w", err)
		}
		return answer(ctx, c, msg)
	})
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	<-inHandler
	setOOM(t, rdb, true)
	close(oom)
	// Long enough for several retries and a claim round, were any charged.
	time.Sleep(1500 * time.Millisecond)
	setOOM(t, rdb, false)
	back := time.Now()
	waitLen(t, rdb, results, 1)
	assert.Less(t, time.Since(back), 3*time.Second, "work resumes once Redis accepts writes")
	waitSettled(t, rdb)
	n, _ := rdb.XLen(context.Background(), dead).Result()
	assert.Zero(t, n, "OOM is not the job's fault")
	assert.Equal(t, "success", streamEntries(t, rdb, results)[0].Values["outcome"])
	close(counts)
	var seen []int64
	for c := range counts {
		seen = append(seen, c)
	}
	assert.Equal(t, int64(1), seen[len(seen)-1], "no delivery charged: %v", seen)
	assert.LessOrEqual(t, len(seen), 3, "dispatch paused while Redis refuses writes: %v", seen)
}

// A commit refused with OOM is retried with the handler's result kept: the
// handler does not run again and the result is written once, when Redis
// accepts writes again.
func TestRedisOOMAtCommitKeepsTheResult(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	var calls atomic.Int32
	inHandler := make(chan struct{})
	oom := make(chan struct{})
	startApp(t, rdb, fastOptions(), 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		if calls.Add(1) == 1 {
			close(inHandler)
			<-oom
		}
		return answer(ctx, c, msg)
	})
	id := addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	<-inHandler
	setOOM(t, rdb, true)
	close(oom)
	// Several claim rounds (ClaimIdle 500 ms), were the entry let go.
	time.Sleep(1500 * time.Millisecond)
	n, _ := rdb.XLen(context.Background(), results).Result()
	assert.Zero(t, n)
	setOOM(t, rdb, false)
	waitSettled(t, rdb)
	byJob := resultsByJob(t, rdb)
	assert.Equal(t, map[string]int{id: 1}, byJob)
	assert.Equal(t, int32(1), calls.Load(), "the handler's result was kept, not redone")
}
