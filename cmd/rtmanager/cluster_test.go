package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/testredis"
)

// The URL's scheme must match what the server is: a redis:// URL that
// reaches a cluster node, or a cluster URL that reaches a plain server, is
// a start-up error naming the right scheme (exit 2), never a MOVED loop.
// A cluster URL to a cluster starts and becomes ready.
func TestRedisURLMustMatchClusterMode(t *testing.T) {
	cl := testredis.StartCluster(t, testredis.ClusterOptions{Masters: 3, ReplicasPerMaster: 1, NodeTimeout: time.Second})
	single := testredis.Start(t)
	t.Run("redis:// to a cluster node", func(t *testing.T) {
		node := cl.Nodes()[1].Addr()
		code, stderr := runToExit(t, 30*time.Second, "--redis-url", "redis://"+node+"/0", "--runtime", "none", "--http-addr", "")
		wantUsageExit(t, code, stderr, "--redis-url reaches "+node+", a Redis Cluster node: use redis+cluster://"+node+"?addr=")
	})
	t.Run("cluster URL to a plain server", func(t *testing.T) {
		code, stderr := runToExit(t, 30*time.Second, "--redis-url", "redis+cluster://"+single.Addr(), "--runtime", "none", "--http-addr", "")
		wantUsageExit(t, code, stderr, "not in cluster mode: use redis://")
	})
	t.Run("cluster URL to a cluster", func(t *testing.T) {
		p := startBinary(t, "--redis-url", cl.URL(), "--runtime", "none")
		require.Equal(t, http.StatusOK, p.get("/readyz"))
		require.NotContains(t, p.stderr.String(), "CROSSSLOT")
		// A stop job through the cluster gets its one result. A cluster
		// always uses the sharded keys, here of one shard.
		doc, err := api.Load()
		require.NoError(t, err)
		layout, err := api.NewLayout(doc, 0, true)
		require.NoError(t, err)
		jobsKey := layout.Key(doc.Channels["stopJobs"], 0)
		resultsKey := layout.Key(doc.Channels["jobResults"], 0)
		require.Equal(t, "runtime:{rt-0}:stop_jobs", jobsKey)
		cc := cl.Client()
		defer cc.Close()
		jobID, err := cc.XAdd(context.Background(), &redis.XAddArgs{Stream: jobsKey,
			Values: []string{"game_id", "g-cluster", "reason", "game_finished"}}).Result()
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			msgs, err := cc.XRange(context.Background(), resultsKey, "-", "+").Result()
			return err == nil && len(msgs) == 1 && msgs[0].Values["job_id"] == jobID
		}, 20*time.Second, 20*time.Millisecond, "the job's result on the cluster: %s", p.stderr.String())

		// /readyz is not ready, naming the key and the node, while the
		// master of a key rtmanager reads is down; ready again once its
		// replica took over.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		old, err := cl.MasterOf(ctx, jobsKey)
		require.NoError(t, err)
		require.NoError(t, old.Kill())
		want := "key " + jobsKey + ": master " + old.Addr()
		var last string
		require.Eventually(t, func() bool {
			var code int
			code, last = p.body("/readyz")
			return code == http.StatusServiceUnavailable && strings.Contains(last, want)
		}, 5*time.Second, 20*time.Millisecond, "readyz while the master is down: %s", last)
		_, err = cl.WaitPromoted(ctx, jobsKey, old)
		require.NoError(t, err)
		require.Eventually(t, func() bool { return p.get("/readyz") == http.StatusOK }, 10*time.Second, 20*time.Millisecond)
	})
}
