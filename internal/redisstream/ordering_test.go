package redisstream_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
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

// Entries with one partition key never run concurrently and run in stream
// order, while different keys run in parallel.
func TestPartitionKeyOrderUnderConcurrency(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	const keys, perKey = 16, 30
	var mu sync.Mutex
	active := map[string]bool{}
	seen := map[string][]int64{}
	var parallel, maxParallel atomic.Int32
	startApp(t, rdb, fastOptions(), 8, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		g := string(msg.Payload.GameId)
		mu.Lock()
		if active[g] {
			mu.Unlock()
			t.Errorf("game %s handled concurrently", g)
			return nil
		}
		active[g] = true
		seen[g] = append(seen[g], *msg.Payload.RequestedAtMs)
		mu.Unlock()
		n := parallel.Add(1)
		for {
			m := maxParallel.Load()
			if n <= m || maxParallel.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		parallel.Add(-1)
		mu.Lock()
		active[g] = false
		mu.Unlock()
		return answer(ctx, c, msg)
	})
	pipe := rdb.Pipeline()
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: jobs, Values: []string{"game_id", fmt.Sprintf("g%d", k), "reason", "game_finished", "requested_at_ms", strconv.Itoa(i)}})
		}
	}
	_, err := pipe.Exec(context.Background())
	require.NoError(t, err)
	waitLen(t, rdb, results, keys*perKey)
	mu.Lock()
	defer mu.Unlock()
	for k := 0; k < keys; k++ {
		got := seen[fmt.Sprintf("g%d", k)]
		require.Len(t, got, perKey)
		for i, v := range got {
			require.Equal(t, int64(i), v, "game g%d out of order", k)
		}
	}
	assert.Greater(t, maxParallel.Load(), int32(1), "different keys ran in parallel")
}

// An older entry claimed from a dead consumer goes before a newer entry of
// the same key that waits for its retry: the newer one is often waiting for
// exactly that older one (a stop that the dead consumer began).
func TestClaimedOlderEntryPreemptsRetryingNewerOne(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, jobs, group, "0").Err())
	first := addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	_, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "crashed", Streams: []string{jobs, ">"}, Count: 1}).Result()
	require.NoError(t, err)
	second := addJob(t, rdb, "game_id", "g1", "reason", "admin_request")

	var firstDone atomic.Bool
	opts := fastOptions()
	opts.ClaimIdle, opts.ClaimInterval = 500*time.Millisecond, 50*time.Millisecond
	opts.RetryBackoff, opts.MaxRetryBackoff, opts.MaxDeliveries = 300*time.Millisecond, 2*time.Second, 3
	startApp(t, rdb, opts, 2, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		if d.ID() == first {
			firstDone.Store(true)
		} else if !firstDone.Load() {
			return errors.New("busy: game g1 is being stopped by another job")
		}
		return answer(ctx, c, msg)
	})
	waitLen(t, rdb, results, 2)
	time.Sleep(200 * time.Millisecond)
	res := streamEntries(t, rdb, results)
	require.Len(t, res, 2)
	assert.Equal(t, first, res[0].Values["job_id"])
	assert.Equal(t, second, res[1].Values["job_id"])
	n, _ := rdb.XLen(ctx, dead).Result()
	assert.Zero(t, n, "the newer job did not run out of deliveries")
}

// The same when the newer entry is being handled as the older one is
// claimed: the older one waits behind it, and takes the key as soon as the
// newer one goes to wait for its retry. Before, the newer one kept the key
// through all its retries, each failing because the older one owned the
// game, and was dead-lettered (the cluster scenario of rtchaos: 4 false
// failures in one run).
func TestClaimedOlderEntryGoesFirstOnceTheNewerOneRetries(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, jobs, group, "0").Err())
	first := addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	_, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "crashed", Streams: []string{jobs, ">"}, Count: 1}).Result()
	require.NoError(t, err)
	second := addJob(t, rdb, "game_id", "g1", "reason", "admin_request")

	var firstDone, secondSeen atomic.Bool
	opts := fastOptions()
	opts.ClaimIdle, opts.ClaimInterval = 500*time.Millisecond, 50*time.Millisecond
	opts.RetryBackoff, opts.MaxRetryBackoff, opts.MaxDeliveries = 300*time.Millisecond, 2*time.Second, 3
	startApp(t, rdb, opts, 2, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		if d.ID() == first {
			firstDone.Store(true)
			return answer(ctx, c, msg)
		}
		if !secondSeen.Swap(true) {
			// Still handling the newer entry when the older one is
			// claimed: wait until the crashed consumer lost it, and a
			// moment more for the claim to reach the reader's queue.
			assert.Eventually(t, func() bool {
				p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: jobs, Group: group, Start: first, End: first, Count: 1}).Result()
				return err == nil && len(p) == 1 && p[0].Consumer != "crashed"
			}, 10*time.Second, 10*time.Millisecond)
			time.Sleep(200 * time.Millisecond)
		}
		if !firstDone.Load() {
			return errors.New("busy: game g1 is being stopped by another job")
		}
		return answer(ctx, c, msg)
	})
	waitLen(t, rdb, results, 2)
	res := streamEntries(t, rdb, results)
	require.Len(t, res, 2)
	assert.Equal(t, first, res[0].Values["job_id"])
	assert.Equal(t, second, res[1].Values["job_id"])
	assert.Equal(t, "success", res[1].Values["outcome"], "the newer job ran out of deliveries: %v", res[1].Values)
	n, _ := rdb.XLen(ctx, dead).Result()
	assert.Zero(t, n, "the newer job did not run out of deliveries")
}
