package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/redisclient"
	"galaxy/rtmanager/internal/runtimes/none"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// clusterWorld is a private Redis Cluster with running games registered in
// the sharded layout.
type clusterWorld struct {
	cl     *testredis.Cluster
	rdb    *redis.ClusterClient // built from the seed URL as rtmanager builds its own
	layout api.Layout
	shards []streamKeys // each shard's keys, shard 0 first
	store  *runtimestore.Store
	games  []string
}

// newClusterWorld starts masters masters with one replica each
// (cluster-node-timeout 1s; appendonly yes, appendfsync always, as the
// other scenarios' Redis) and registers games running games, each in its
// shard of shards.
func newClusterWorld(ctx context.Context, c *contract, masters, shards, games int) (*clusterWorld, error) {
	cl, err := testredis.NewCluster(testredis.ClusterOptions{
		Masters: masters, ReplicasPerMaster: 1, NodeTimeout: time.Second,
		Args: []string{"--appendonly", "yes", "--appendfsync", "always"},
	})
	if err != nil {
		return nil, err
	}
	w := &clusterWorld{cl: cl}
	u, err := redisclient.New(cl.URL(), redisclient.Tuning{})
	if err != nil {
		w.close()
		return nil, fmt.Errorf("cluster client: %w", err)
	}
	w.rdb = u.(*redis.ClusterClient)
	if w.layout, err = api.NewLayout(c.doc, shards, true); err != nil {
		w.close()
		return nil, err
	}
	chans := make([]*api.Channel, 3)
	for i, addr := range []string{jobsStream, resultsStream, deadStream} {
		ch, ok := c.doc.ChannelByAddress(addr)
		if !ok {
			w.close()
			return nil, fmt.Errorf("no channel %s in the contract", addr)
		}
		chans[i] = ch
	}
	for n := range shards {
		w.shards = append(w.shards, streamKeys{
			jobs: w.layout.Key(chans[0], n), results: w.layout.Key(chans[1], n), dead: w.layout.Key(chans[2], n),
		})
	}
	w.store = runtimestore.New(w.rdb, runtimestore.Options{Layout: w.layout})
	svc, err := stopruntime.New(w.store, map[string]stopruntime.Driver{stopruntime.RuntimeNone: none.Driver{}}, stopruntime.Options{})
	if err != nil {
		w.close()
		return nil, err
	}
	for i := range games {
		g := fmt.Sprintf("g-%04d", i)
		if _, err := svc.Register(ctx, stopruntime.Record{GameID: g, Runtime: stopruntime.RuntimeNone, EngineEndpoint: "127.0.0.1:" + strconv.Itoa(7000+i)}); err != nil {
			w.close()
			return nil, fmt.Errorf("register %s: %w", g, err)
		}
		w.games = append(w.games, g)
	}
	return w, nil
}

// jobKeys are the job streams of every shard.
func (w *clusterWorld) jobKeys() []string {
	out := make([]string, len(w.shards))
	for n, k := range w.shards {
		out[n] = k.jobs
	}
	return out
}

// jobKey is the job stream of a game's shard.
func (w *clusterWorld) jobKey(game string) string { return w.shards[w.layout.ShardOf(game)].jobs }

// resultsLen counts the results of every shard (errors count nothing).
func (w *clusterWorld) resultsLen(ctx context.Context) int64 {
	var n int64
	for _, k := range w.shards {
		l, _ := w.rdb.XLen(ctx, k.results).Result()
		n += l
	}
	return n
}

func (w *clusterWorld) close() {
	if w.rdb != nil {
		_ = w.rdb.Close()
	}
	_ = w.cl.Close()
}
