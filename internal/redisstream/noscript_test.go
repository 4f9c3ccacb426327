package redisstream_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

// Redis forgetting the commit script (SCRIPT FLUSH, as a restart does)
// costs nothing: the commit falls back to EVAL and loads it again.
func TestCommitSurvivesAScriptFlush(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	startApp(t, rdb, fastOptions(), 1, answer)
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	waitLen(t, rdb, results, 1)
	require.NoError(t, rdb.ScriptFlush(context.Background()).Err())
	addJob(t, rdb, "game_id", "g2", "reason", "game_finished")
	waitLen(t, rdb, results, 2)
	require.Zero(t, pendingCount(t, rdb), "acknowledged with the result, in one step")
	require.Empty(t, streamEntries(t, rdb, dead))
}
