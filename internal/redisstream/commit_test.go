package redisstream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/testredis"
)

// A handler that publishes then fails leaves no result; one that succeeds
// leaves its result and its acknowledgement together.
func TestPublishAndAckAreOneStep(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.MaxDeliveries = 2
	startApp(t, rdb, opts, 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		// assert, not require: this runs in the broker's goroutine.
		if err := answer(ctx, c, msg); !assert.NoError(t, err) {
			return err
		}
		if msg.Payload.GameId == "bad" {
			return errors.New("fail after publishing")
		}
		return nil
	})
	addJob(t, rdb, "game_id", "bad", "reason", "game_finished")
	addJob(t, rdb, "game_id", "good", "reason", "game_finished")
	waitLen(t, rdb, dead, 1)
	waitLen(t, rdb, results, 1)
	time.Sleep(200 * time.Millisecond)
	res := streamEntries(t, rdb, results)
	require.Len(t, res, 1)
	assert.Equal(t, "good", res[0].Values["game_id"])
	assert.Zero(t, pendingCount(t, rdb))
}

// If another consumer claimed the entry while this one handled it, this
// one's publications are dropped: each entry is answered once.
func TestCommitRequiresOwnership(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	release := make(chan struct{})
	startApp(t, rdb, fastOptions(), 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		<-release
		return answer(ctx, c, msg)
	})
	id := addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 1 }, 5*time.Second, 10*time.Millisecond)
	// Someone else takes the entry over and acknowledges it.
	require.NoError(t, rdb.XClaim(ctx, &redis.XClaimArgs{Stream: jobs, Group: group, Consumer: "other", Messages: []string{id}}).Err())
	require.NoError(t, rdb.XAck(ctx, jobs, group, id).Err())
	close(release)
	time.Sleep(300 * time.Millisecond)
	assert.Empty(t, streamEntries(t, rdb, results))
}
