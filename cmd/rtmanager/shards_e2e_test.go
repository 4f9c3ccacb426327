package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
)

// The built binary with --shards 16 on a single Redis reads every shard
// key and answers each job once in its own shard; the group metrics stay
// one series per channel, under its address.
func TestEndToEndShards(t *testing.T) {
	const shards, games = 16, 24
	w := newWorld(t)
	ctx := context.Background()
	l, err := api.NewLayout(w.doc, shards, false)
	require.NoError(t, err)
	jobsCh, _ := w.doc.ChannelByAddress(jobs)
	resultsCh, _ := w.doc.ChannelByAddress(results)
	p := startBinary(t, "--redis-url", w.srv.URL(), "--runtime", "none", "--shards", "16")

	sent := map[string]bool{} // shard/job id
	for g := range games {
		game := fmt.Sprintf("sharded-%d", g)
		n := l.ShardOf(game)
		id, err := w.rdb.XAdd(ctx, &redis.XAddArgs{Stream: l.Key(jobsCh, n), Values: []string{"game_id", game, "reason", "game_finished"}}).Result()
		require.NoError(t, err)
		sent[fmt.Sprintf("%d/%s", n, id)] = true
	}
	count := func() int {
		c := 0
		for n := range shards {
			c += int(w.rdb.XLen(ctx, l.Key(resultsCh, n)).Val())
		}
		return c
	}
	require.Eventually(t, func() bool { return count() >= games }, 30*time.Second, 20*time.Millisecond)
	for n := range shards {
		msgs, err := w.rdb.XRange(ctx, l.Key(resultsCh, n), "-", "+").Result()
		require.NoError(t, err)
		for _, m := range msgs {
			ref := fmt.Sprintf("%d/%s", n, m.Values["job_id"])
			assert.True(t, sent[ref], "result %v in shard %d answers no job of that shard", m.Values, n)
			delete(sent, ref)
			assert.Equal(t, "not_found", m.Values["error_code"], "nothing registered: --runtime none answers not_found")
		}
	}
	assert.Empty(t, sent, "jobs without a result")
	assert.Zero(t, w.rdb.Exists(ctx, jobs, results).Val(), "the plain keys are not used")

	resp, err := http.Get("http://" + p.http + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	// Compared line by line: a failure prints lines, not all of /metrics.
	var group, shardLabelled []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "rtmanager_pending_entries") || strings.HasPrefix(line, "rtmanager_consumer_group_up") {
			group = append(group, line)
		}
		if strings.HasPrefix(line, "rtmanager_") && strings.Contains(line, "{rt-") {
			shardLabelled = append(shardLabelled, line)
		}
	}
	assert.Contains(t, group, `rtmanager_pending_entries{group="rtmanager",stream="runtime:stop_jobs"} 0`)
	assert.Contains(t, group, `rtmanager_consumer_group_up{group="rtmanager",stream="runtime:stop_jobs"} 1`)
	assert.Empty(t, shardLabelled, "no metric is labelled with a shard key")
}

func TestShardsFlagIsChecked(t *testing.T) {
	for _, v := range []string{"-1", "16385"} {
		_, err := parseConfig([]string{"--shards", v}, noEnv, io.Discard)
		var ue *usageError
		require.ErrorAs(t, err, &ue, v)
		assert.True(t, strings.HasPrefix(ue.msg, "invalid --shards"), ue.msg)
	}
	cfg, err := parseConfig([]string{"--shards", "16"}, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 16, brokerOptions(cfg, "rtmanager", nil).Shards)
}
