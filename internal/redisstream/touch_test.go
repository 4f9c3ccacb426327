package redisstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/testredis"
)

// Keeping held entries fresh never takes an entry back from a consumer
// that claimed it meanwhile (as after this process was cut off for longer
// than ClaimIdle).
func TestKeepingEntriesFreshLeavesClaimedOnesWithTheirClaimer(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	release := make(chan struct{})
	started := make(chan string, 2)
	opts := fastOptions()
	opts.Consumer = "app"
	opts.ClaimIdle = 5 * time.Second // no claim of its own during the test
	opts.ClaimInterval = 50 * time.Millisecond
	startApp(t, rdb, opts, 2, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		started <- string(msg.Payload.GameId)
		<-release
		return answer(ctx, c, msg)
	})
	defer close(release)
	a := addJob(t, rdb, "game_id", "a", "reason", "game_finished")
	b := addJob(t, rdb, "game_id", "b", "reason", "game_finished")
	<-started
	<-started

	require.NoError(t, rdb.XClaim(ctx, &redis.XClaimArgs{Stream: jobs, Group: group, Consumer: "other", Messages: []string{a}}).Err())
	claimed := time.Now()
	pending := func(id string) redis.XPendingExt {
		p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: jobs, Group: group, Start: id, End: id, Count: 1}).Result()
		require.NoError(t, err)
		require.Len(t, p, 1)
		return p[0]
	}
	// Two refresh rounds after the claim: b was refreshed since.
	require.Eventually(t, func() bool {
		return pending(b).Idle+100*time.Millisecond < time.Since(claimed)
	}, 10*time.Second, 10*time.Millisecond, "b is kept fresh")
	require.Eventually(t, func() bool {
		return pending(b).Idle+100*time.Millisecond < time.Since(claimed)-150*time.Millisecond
	}, 10*time.Second, 10*time.Millisecond, "b is kept fresh again")
	assert.Equal(t, "other", pending(a).Consumer, "a stays with the consumer that claimed it")
	assert.Equal(t, "app", pending(b).Consumer)
}
