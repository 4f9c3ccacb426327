package redisstream_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/testredis"
)

// On a Redis Cluster of 3 masters with S = 16, jobs of many games are each
// answered exactly once, in their shard, with the atomic commit script:
// one shard's keys share a slot, so nothing is refused with CROSSSLOT.
func TestShardedOnACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	c := testredis.StartCluster(t, testredis.ClusterOptions{Masters: 3})
	rdb := c.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	doc, err := api.Load()
	require.NoError(t, err)
	l, err := api.NewLayout(doc, testShards, true)
	require.NoError(t, err)
	w := &shardedWorld{rdb: rdb, layout: l, doc: doc}

	a := startApp(t, rdb, shardedOptions(), 4, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		return answer(ctx, c, msg)
	})
	require.True(t, a.broker.Atomic(), "the sharded commit is one script on a Cluster too")
	require.Equal(t, l, a.broker.Layout())

	masters := map[string]bool{}
	for n := range testShards {
		m, err := c.MasterOf(ctx, w.key(t, jobs, n))
		require.NoError(t, err)
		masters[m.ID()] = true
	}
	require.Len(t, masters, 3, "the 16 shards spread over the 3 masters")

	const games = 48
	sent := map[string]bool{}
	for g := range games {
		n, id := w.addJob(t, fmt.Sprintf("cluster-game-%d", g), 1)
		sent[fmt.Sprintf("%d/%s", n, id)] = true
	}
	require.Eventually(t, func() bool { return w.resultCount(t) >= games }, 30*time.Second, 20*time.Millisecond)
	require.Never(t, func() bool { return w.resultCount(t) > games }, 300*time.Millisecond, 20*time.Millisecond)
	for n, msgs := range w.results(t) {
		for _, m := range msgs {
			ref := fmt.Sprintf("%d/%s", n, m.Values["job_id"])
			assert.True(t, sent[ref], "result %v in shard %d answers no job of that shard", m.Values, n)
			delete(sent, ref)
		}
	}
	assert.Empty(t, sent, "jobs without a result")
	for n := range testShards {
		p, err := rdb.XPending(ctx, w.key(t, jobs, n), group).Result()
		require.NoError(t, err)
		assert.Zero(t, p.Count, "shard %d pending", n)
	}
	require.NoError(t, a.broker.Health(), "no read or commit refused (CROSSSLOT, MOVED)")
}
