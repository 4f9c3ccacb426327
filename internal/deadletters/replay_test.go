package deadletters_test

import (
	"context"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/deadletters"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

var pair = deadletters.Pair{Dead: "t:dead", Jobs: "t:jobs"}

func addDead(ctx context.Context, t *testing.T, c *redis.Client, extra ...any) string {
	t.Helper()
	vals := append([]any{
		redisstream.FieldDeadReason, "invalid", redisstream.FieldDeadError, "bad",
		redisstream.FieldOriginalID, "1-0", redisstream.FieldDeliveryCount, "1", redisstream.FieldDeadAtMS, "5",
		"game_id", "g-1", "reason", "admin_request",
	}, extra...)
	id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: pair.Dead, Values: vals}).Result()
	require.NoError(t, err)
	return id
}

func TestReplayMovesTheOriginalFields(t *testing.T) {
	ctx := context.Background()
	c := testredis.Start(t).Client()
	defer c.Close()
	id := addDead(ctx, t, c, "original.dead_reason", "kept")

	r, err := deadletters.Replay(ctx, c, pair, id)
	require.NoError(t, err)
	assert.Equal(t, id, r.DeadID)
	assert.Equal(t, "1-0", r.OriginalID)

	jobs, err := c.XRange(ctx, pair.Jobs, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	assert.Equal(t, r.JobID, jobs[0].ID)
	assert.Equal(t, map[string]any{"game_id": "g-1", "reason": "admin_request", "dead_reason": "kept"}, jobs[0].Values)
	n, err := c.XLen(ctx, pair.Dead).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestReplayOfTheSameLetterTwiceWinsOnce(t *testing.T) {
	ctx := context.Background()
	c := testredis.Start(t).Client()
	defer c.Close()
	id := addDead(ctx, t, c)

	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = deadletters.Replay(ctx, c, pair, id)
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else {
			require.ErrorIs(t, err, deadletters.ErrGone)
		}
	}
	assert.Equal(t, 1, ok)
	n, err := c.XLen(ctx, pair.Jobs).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
}

func TestReplayLeavesATruncatedLetter(t *testing.T) {
	ctx := context.Background()
	c := testredis.Start(t).Client()
	defer c.Close()
	id := addDead(ctx, t, c, redisstream.FieldDeadTruncated, "fields beyond 64")

	_, err := deadletters.Replay(ctx, c, pair, id)
	require.ErrorIs(t, err, deadletters.ErrTruncated)
	n, err := c.XLen(ctx, pair.Dead).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)
	n, err = c.XLen(ctx, pair.Jobs).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
}
