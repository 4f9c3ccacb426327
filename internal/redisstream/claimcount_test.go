package redisstream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

// A claimed entry keeps its delivery count even when the claiming consumer
// holds more than a thousand entries between the claimed ones: a poison
// entry delivered too often is dead-lettered, not delivered as new.
func TestClaimedDeliveryCountIsExactWithADeepPrefetch(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, jobs, group, "0").Err())
	readAs := func(consumer string) {
		require.NoError(t, rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: consumer, Streams: []string{jobs, ">"}, Count: 1}).Err())
	}
	addJob(t, rdb, "game_id", "first", "reason", "game_finished")
	readAs("gone")
	const fillers = 1100
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := 0; i < fillers; i++ {
			p.XAdd(ctx, &redis.XAddArgs{Stream: jobs, Values: []string{"game_id", fmt.Sprintf("f%d", i), "reason", "game_finished"}})
		}
		return nil
	})
	require.NoError(t, err)

	release := make(chan struct{})
	opts := fastOptions()
	opts.Consumer = "app"
	opts.Prefetch, opts.ReadCount = fillers, fillers // full once the fillers are read
	startApp(t, rdb, opts, 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		<-release
		return answer(ctx, c, msg)
	})
	require.Eventually(t, func() bool {
		p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: jobs, Group: group, Consumer: "app", Start: "-", End: "+", Count: 2 * fillers}).Result()
		return err == nil && len(p) == fillers
	}, 20*time.Second, 10*time.Millisecond, "the app holds the fillers")

	// The poison entry: read by a consumer that went away, delivered 6 times.
	poison := addJob(t, rdb, "game_id", "poison", "reason", "game_finished")
	readAs("gone")
	for i := 0; i < 5; i++ {
		require.NoError(t, rdb.XClaim(ctx, &redis.XClaimArgs{Stream: jobs, Group: group, Consumer: "gone", Messages: []string{poison}}).Err())
	}
	require.Eventually(t, func() bool {
		p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: jobs, Group: group, Consumer: "app", Start: poison, End: poison, Count: 1}).Result()
		return err == nil && len(p) == 1
	}, 20*time.Second, 10*time.Millisecond, "the app claims the poison entry")
	close(release)

	require.Eventually(t, func() bool {
		for _, m := range streamEntries(t, rdb, dead) {
			if m.Values["original_id"] == poison {
				return true
			}
		}
		return false
	}, 20*time.Second, 10*time.Millisecond, "the poison entry is dead-lettered")
	for _, m := range streamEntries(t, rdb, dead) {
		if m.Values["original_id"] == poison {
			assert.Equal(t, redisstream.DeadMaxDeliveries, m.Values["dead_reason"])
			assert.Equal(t, "7", m.Values["delivery_count"])
		}
	}
}
