package runtimewatch_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/runtimewatch"
	"galaxy/rtmanager/internal/testredis"
)

// In a sharded layout (16 shards on a single Redis) the reconciliation
// finds the records under their sharded keys, and a game's event lands in
// the events stream of its shard, which shares the record's slot.
func TestShardedEventsLandInTheGamesShard(t *testing.T) {
	e := setup(t)
	doc, err := api.Load()
	require.NoError(t, err)
	l, err := api.NewLayout(doc, 16, false)
	require.NoError(t, err)
	e.store = runtimestore.New(e.rdb, runtimestore.Options{Layout: l})
	// Shards among 16 (testdata/contract/shards.json): foo 6, bar 5.
	streams := map[string]string{"foo": "runtime:{rt-6}:events", "bar": "runtime:{rt-5}:events"}
	ids := map[string]string{}
	for g := range streams {
		ids[g] = e.sleeper(t, g)
		e.register(t, g, ids[g], "")
	}
	e.watcher(t, func(o *runtimewatch.Options) { o.Layout = l }) // found by the first reconciliation
	e.settle(t, 1)
	for g := range streams {
		kill(t, ids[g])
	}
	ctx := context.Background()
	for g, key := range streams {
		require.Eventually(t, func() bool { return e.rdb.XLen(ctx, key).Val() == 1 }, 10*time.Second, 10*time.Millisecond, g)
		msgs, err := e.rdb.XRange(ctx, key, "-", "+").Result()
		require.NoError(t, err)
		assert.Equal(t, g, msgs[0].Values["game_id"])
		assert.Equal(t, "engine_exited", msgs[0].Values["type"])
		assert.Equal(t, "exited", e.status(t, g).Status)
	}
	assert.Empty(t, e.events(t), "nothing in the unsharded stream")
}

func TestShardedLayoutNeedsAShardedEventsChannel(t *testing.T) {
	e := setup(t)
	doc, err := api.Load()
	require.NoError(t, err)
	l, err := api.NewLayout(doc, 16, false)
	require.NoError(t, err)
	ch := *e.ch
	ch.Stream.ShardedAddress = ""
	_, err = runtimewatch.New(e.store, runtimewatch.Options{Events: &ch, Layout: l})
	require.ErrorContains(t, err, "no sharded address")
}

// On a Redis Cluster (3 masters, 16 shards) the watch runs: the
// reconciliation scans every master, and each exit's record change and
// event are one script in the game's slot (no CROSSSLOT).
func TestClusterWatchWritesEachShardsEvents(t *testing.T) {
	cl := testredis.StartCluster(t, testredis.ClusterOptions{Masters: 3})
	cc := cl.Client()
	t.Cleanup(func() { _ = cc.Close() })
	doc, err := api.Load()
	require.NoError(t, err)
	l, err := api.NewLayout(doc, 16, true)
	require.NoError(t, err)
	ch, ok := doc.ChannelByAddress(events)
	require.True(t, ok)
	e := &env{store: runtimestore.New(cc, runtimestore.Options{Layout: l}), drv: process.New(process.Options{}), ch: ch}
	// foo, bar and hello are in shards 6, 5 and 2; their slots are on
	// more than one master.
	games := []string{"foo", "bar", "hello"}
	ctx := context.Background()
	masters := map[string]bool{}
	ids := map[string]string{}
	for _, g := range games {
		ids[g] = e.sleeper(t, g)
		e.register(t, g, ids[g], "")
		m, err := cl.MasterOf(ctx, e.store.RecordKey(g))
		require.NoError(t, err)
		masters[m.ID()] = true
	}
	require.Greater(t, len(masters), 1)
	e.watcher(t, func(o *runtimewatch.Options) { o.Layout = l })
	e.settle(t, 1)
	for _, g := range games {
		kill(t, ids[g])
	}
	for _, g := range games {
		key := l.Key(ch, l.ShardOf(g))
		require.Eventually(t, func() bool { return cc.XLen(ctx, key).Val() == 1 }, 10*time.Second, 10*time.Millisecond, g)
		msgs, err := cc.XRange(ctx, key, "-", "+").Result()
		require.NoError(t, err)
		assert.Equal(t, g, msgs[0].Values["game_id"])
		assert.Equal(t, "exited", e.status(t, g).Status)
	}
}
