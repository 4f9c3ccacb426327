package redisstream_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisclient"
	"galaxy/rtmanager/internal/testredis"
)

// On a cluster, kill -9 of the job stream's master while handlers fail on
// it: the broker is not ready (naming the key and the node) until the
// replica took over, no delivery is charged (a PING to a random node would
// say Redis answers, end the outage early and charge the retries), and
// every job is answered once after the failover.
func TestClusterMasterFailoverChargesNoDelivery(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := testredis.StartCluster(t, testredis.ClusterOptions{Masters: 3, ReplicasPerMaster: 1, NodeTimeout: time.Second})
	rdb, err := redisclient.New(cl.URL(), redisclient.Tuning{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rdb.Close() })

	// A cluster always uses the sharded keys, here of one shard.
	jobs, results, dead := "runtime:{rt-0}:stop_jobs", "runtime:{rt-0}:job_results", "runtime:{rt-0}:stop_jobs:dead"
	const n = 5
	opts := fastOptions()
	opts.MaxDeliveries = 2
	var seen counts
	var once sync.Map
	arrived := make(chan struct{}, n)
	redisDown := make(chan struct{})
	a := startApp(t, rdb, opts, n, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		seen.add(ctx)
		if _, again := once.LoadOrStore(msg.Payload.GameId, true); !again {
			arrived <- struct{}{}
			<-redisDown
		}
		// What the orchestrator does first: a Redis call, here on the
		// killed master until the failover.
		if err := rdb.XLen(ctx, jobs).Err(); err != nil {
			return fmt.Errorf("begin stop: %w", err)
		}
		return answer(ctx, c, msg)
	})
	for i := range n {
		require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: jobs, Values: []any{"game_id", fmt.Sprintf("g%d", i), "reason", "game_finished"}}).Err())
	}
	for range n {
		select {
		case <-arrived:
		case <-ctx.Done():
			t.Fatalf("the jobs never reached the handlers: %v", ctx.Err())
		}
	}
	require.Equal(t, []string{jobs}, a.broker.ChannelKeys(runtimejobs.StopJobsChannelPath), "the key this test writes is the broker's")
	require.NoError(t, a.broker.CheckRedis(ctx))

	old, err := cl.MasterOf(ctx, jobs)
	require.NoError(t, err)
	// The jobs and their deliveries must survive the failover: wait until
	// the replica has them (replication is asynchronous).
	require.NoError(t, cl.WaitReplicated(ctx, old))
	require.NoError(t, old.Kill())
	close(redisDown)
	require.Eventually(t, func() bool {
		err := a.broker.CheckRedis(ctx)
		// Shard 0's start and stop job streams share the slot, so either
		// may be named first.
		return err != nil && strings.Contains(err.Error(), ":{rt-0}:") && strings.Contains(err.Error(), ": master "+old.Addr())
	}, 5*time.Second, 10*time.Millisecond, "not ready, naming a key and its master, while the master is down")

	promoted, err := cl.WaitPromoted(ctx, jobs, old)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return a.broker.CheckRedis(ctx) == nil && a.broker.Health() == nil }, 10*time.Second, 10*time.Millisecond, "ready once the replica took over")
	t.Logf("master %s killed, %s promoted", old.Addr(), promoted.Addr())

	waitLen(t, rdb, results, n)
	l, err := rdb.XLen(ctx, dead).Result()
	require.NoError(t, err)
	assert.Zero(t, l, "a failover is not the jobs' fault")
	for _, c := range seen.get() {
		assert.Equal(t, int64(1), c, "a delivery was charged: %v", seen.get())
	}
	byJob := map[string]int{}
	for _, m := range streamEntries(t, rdb, results) {
		byJob[m.Values["job_id"].(string)]++
	}
	assert.Len(t, byJob, n)
	for id, c := range byJob {
		assert.Equal(t, 1, c, "job %s answered %d times", id, c)
	}
}
