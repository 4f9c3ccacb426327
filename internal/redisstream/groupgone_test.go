package redisstream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

// XGROUP DESTROY while a backlog is being worked through, with entries in
// hand: one process answers every job exactly once. The group is recreated
// before the oldest entry in hand, and entries answered already are only
// acknowledged when read again.
func TestGroupDestroyedWhileWorkingSkipsAndReplaysNothing(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	const n = 3000
	ids := map[string]bool{}
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := 0; i < n; i++ {
			p.XAdd(ctx, &redis.XAddArgs{Stream: jobs, Values: []string{"game_id", fmt.Sprintf("g%d", i), "reason", "game_finished"}})
		}
		return nil
	})
	require.NoError(t, err)
	for _, m := range streamEntries(t, rdb, jobs) {
		ids[m.ID] = true
	}
	startApp(t, rdb, fastOptions(), 4, answer)
	waitLen(t, rdb, results, n/5)
	require.NoError(t, rdb.XGroupDestroy(ctx, jobs, group).Err())

	answered := func() map[string]int {
		byJob := map[string]int{}
		for _, m := range streamEntries(t, rdb, results) {
			byJob[m.Values["job_id"].(string)]++
		}
		return byJob
	}
	require.Eventually(t, func() bool { return len(answered()) == n }, 60*time.Second, 50*time.Millisecond,
		"every job answered")
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 0 }, 20*time.Second, 10*time.Millisecond)
	byJob := answered()
	for id, c := range byJob {
		assert.True(t, ids[id], "result for an unknown job %s", id)
		assert.Equal(t, 1, c, "job %s answered %d times", id, c)
	}
	assert.Len(t, streamEntries(t, rdb, results), n)
}
