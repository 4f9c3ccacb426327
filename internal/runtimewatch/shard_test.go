package runtimewatch_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/runtimewatch"
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
