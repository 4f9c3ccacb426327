package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

// rtmanagerctl takes a cluster URL, and refuses (exit 2, naming the right
// scheme) a URL whose scheme does not match what the server is.
func TestClusterURLs(t *testing.T) {
	cl := testredis.StartCluster(t, testredis.ClusterOptions{Masters: 3})
	single := testredis.Start(t)

	node := cl.Nodes()[2].Addr()
	o := cli(t, "redis://"+node+"/0", "status", "g-1")
	assert.Equal(t, 2, o.code, o.stderr)
	assert.Contains(t, o.stderr, "reaches "+node+", a Redis Cluster node: use redis+cluster://"+node+"?addr=")

	o = cli(t, "redis+cluster://"+single.Addr(), "status", "g-1")
	assert.Equal(t, 2, o.code, o.stderr)
	assert.Contains(t, o.stderr, "not in cluster mode: use redis://")

	o = cli(t, cl.URL(), "register", "g-1", "--container", "c1", "--endpoint", "127.0.0.1:9", "--runtime", "none")
	requireOK(t, o)
	o = cli(t, cl.URL(), "--json", "status", "g-1")
	requireOK(t, o)
	require.Contains(t, o.stdout, `"c1"`)
}

// On a Redis Cluster with --shards 16 every command reads and writes the
// shard keys, whose slots are spread over the masters: results (and
// --follow, where one multi-key XREAD would be CROSSSLOT), pending, dead
// list and replay, register and status.
func TestCommandsOnClusterShards(t *testing.T) {
	cl := testredis.StartCluster(t, testredis.ClusterOptions{Masters: 3})
	c := cl.Client()
	defer c.Close()
	doc, l := shardedLayout(t, testShards, true)
	key := func(address string, n int) string { return shardKey(t, doc, l, address, n) }
	url := cl.URL()

	// register and status: records on their games' shards.
	games := gamesOnShards(t, l, 3)
	for _, g := range games {
		requireOK(t, cli(t, url, "--shards", "16", "register", g, "--container", "c-"+g, "--endpoint", "127.0.0.1:9", "--runtime", "docker"))
	}
	for _, g := range games {
		o := cli(t, url, "--shards", "16", "--json", "status", g)
		requireOK(t, o)
		assert.Equal(t, "c-"+g, decode[recordView](t, o.stdout).ContainerID)
		n, err := c.Exists(tctx(t), "rtmanager:"+l.HashTag(l.ShardOf(g))+":runtime:"+g).Result()
		require.NoError(t, err)
		assert.Equal(t, int64(1), n)
	}

	// results: merged over the shards, then --follow.
	addResultAt(t, c, key(resultsKey, 1), "3-0", "j1", "g")
	addResultAt(t, c, key(resultsKey, 8), "2-0", "j8", "g")
	addResultAt(t, c, key(resultsKey, 15), "4-0", "j15", "g")
	o := cli(t, url, "--shards", "16", "--json", "results")
	requireOK(t, o)
	assert.Equal(t, []shardID{{8, "2-0"}, {1, "3-0"}, {15, "4-0"}}, resultShardIDs(t, o.stdout))

	fctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	codec := make(chan int, 1)
	go func() {
		getenv := func(string) string { return url }
		codec <- run(fctx, []string{"--shards", "16", "results", "--follow", "--json", "--count", "1"}, getenv, &out, &errb)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), `"j15"`) }, 20*time.Second, 20*time.Millisecond)
	addResultAt(t, c, key(resultsKey, 5), "*", "new-5", "g")
	addResultAt(t, c, key(resultsKey, 11), "*", "new-11", "g")
	require.Eventually(t, func() bool {
		s := out.String()
		return strings.Contains(s, `"new-5"`) && strings.Contains(s, `"new-11"`)
	}, 20*time.Second, 20*time.Millisecond, "stdout %s, stderr %s", out.String(), errb.String())
	cancel()
	select {
	case code := <-codec:
		assert.Equal(t, 0, code, errb.String())
	case <-time.After(10 * time.Second):
		t.Fatal("--follow did not stop when its context was cancelled")
	}

	// pending: the group on every shard key.
	for n := range testShards {
		require.NoError(t, c.XGroupCreateMkStream(tctx(t), key(jobsKey, n), defaultGroup, "0").Err())
	}
	for _, n := range []int{3, 13} {
		require.NoError(t, c.XAdd(tctx(t), &redis.XAddArgs{Stream: key(jobsKey, n), Values: []any{"game_id", "g", "reason", "game_finished"}}).Err())
		require.NoError(t, c.XReadGroup(tctx(t), &redis.XReadGroupArgs{
			Group: defaultGroup, Consumer: "host-a", Streams: []string{key(jobsKey, n), ">"}, Count: 1, Block: -1,
		}).Err())
	}
	o = cli(t, url, "--shards", "16", "--json", "pending")
	requireOK(t, o)
	pv := decode[pendingView](t, o.stdout)
	assert.Equal(t, int64(2), pv.Pending)
	assert.Equal(t, []consumerView{{"host-a", 2}}, pv.Consumers)
	assert.Len(t, pv.Shards, testShards)
	assert.Len(t, pv.Oldest, 2)

	// dead: list both shards, replay each to its own shard's job stream.
	g2, g9 := gameOnShard(t, l, 2), gameOnShard(t, l, 9)
	addDeadAt(t, c, key(deadKey, 2), "7-0", g2)
	addDeadAt(t, c, key(deadKey, 9), "7-0", g9)
	o = cli(t, url, "--shards", "16", "--json", "dead", "list")
	requireOK(t, o)
	assert.Len(t, decode[[]deadView](t, o.stdout), 2)
	o = cli(t, url, "--shards", "16", "dead", "replay", "--all")
	requireOK(t, o)
	for n, g := range map[int]string{2: g2, 9: g9} {
		js, err := c.XRange(tctx(t), key(jobsKey, n), "-", "+").Result()
		require.NoError(t, err)
		require.Len(t, js, 1, "shard %d", n)
		assert.Equal(t, g, js[0].Values["game_id"])
		ln, err := c.XLen(tctx(t), key(deadKey, n)).Result()
		require.NoError(t, err)
		assert.Zero(t, ln)
	}
}
