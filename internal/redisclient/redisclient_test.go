package redisclient_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/redisclient"
	"galaxy/rtmanager/internal/testredis"
)

const src = "return ARGV[1]"

func TestEvalIfNoScriptRunsAScriptRedisDoesNotHold(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	sha := redis.NewScript(src).Hash()

	args := []any{"evalsha", sha, 0, "a"}
	first := rdb.Do(ctx, args...)
	require.True(t, redisclient.IsNoScript(first.Err()), "%v", first.Err())
	got := redisclient.EvalIfNoScript(ctx, rdb, first, args, src)
	require.NoError(t, got.Err())
	assert.Equal(t, "a", got.Val())

	// EVAL loaded it: the next EVALSHA runs, and its reply is kept.
	args = []any{"evalsha", sha, 0, "b"}
	second := rdb.Do(ctx, args...)
	require.NoError(t, second.Err())
	assert.Same(t, second, redisclient.EvalIfNoScript(ctx, rdb, second, args, src))
	assert.Equal(t, "evalsha", args[0], "nothing sent again")

	// After a SCRIPT FLUSH (as after a restart), once more through EVAL.
	require.NoError(t, rdb.ScriptFlush(ctx).Err())
	args = []any{"evalsha", sha, 0, "c"}
	got = redisclient.EvalIfNoScript(ctx, rdb, rdb.Do(ctx, args...), args, src)
	require.NoError(t, got.Err())
	assert.Equal(t, "c", got.Val())
}

func TestIsNoScript(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	err := rdb.EvalSha(ctx, redis.NewScript("return 1").Hash(), nil).Err()
	require.Error(t, err)
	assert.True(t, redisclient.IsNoScript(err))
	assert.True(t, redisclient.IsNoScript(fmt.Errorf("commit: %w", err)), "wrapped")
	assert.False(t, redisclient.IsNoScript(nil))
	assert.False(t, redisclient.IsNoScript(errors.New("NOSCRIPT, but not from Redis")))
	other := rdb.Eval(ctx, "return redis.error_reply('NOT A NOSCRIPT')", nil).Err()
	require.Error(t, other)
	assert.False(t, redisclient.IsNoScript(other), "%v", other)
}

func TestIsCluster(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	assert.False(t, redisclient.IsCluster(rdb))
	// Not connected: a Cluster client is told apart by its type alone.
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}})
	defer cc.Close()
	assert.True(t, redisclient.IsCluster(cc))
	uc := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{srv.Addr(), srv.Addr()}})
	defer uc.Close()
	assert.True(t, redisclient.IsCluster(uc), "a universal client with several addresses is a Cluster client")
}
