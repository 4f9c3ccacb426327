package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/metrics"
	"galaxy/rtmanager/internal/testredis"
)

func TestGroupCollectorReadsPendingAndLag(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	c := metrics.NewGroupCollector(rdb, "jobs", "g")

	// No stream yet: the group is reported down, nothing else.
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP rtmanager_consumer_group_up 1 when the group could be read from Redis at this scrape.
# TYPE rtmanager_consumer_group_up gauge
rtmanager_consumer_group_up{group="g",stream="jobs"} 0
`)))

	require.NoError(t, rdb.XGroupCreateMkStream(ctx, "jobs", "g", "0").Err())
	for i := 0; i < 5; i++ {
		require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: "jobs", Values: []string{"k", "v"}}).Err())
	}
	_, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"jobs", ">"}, Count: 2}).Result()
	require.NoError(t, err)
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP rtmanager_consumer_group_lag Entries of the stream not yet delivered to the group.
# TYPE rtmanager_consumer_group_lag gauge
rtmanager_consumer_group_lag{group="g",stream="jobs"} 3
# HELP rtmanager_consumer_group_up 1 when the group could be read from Redis at this scrape.
# TYPE rtmanager_consumer_group_up gauge
rtmanager_consumer_group_up{group="g",stream="jobs"} 1
# HELP rtmanager_pending_entries Entries delivered to the group and not yet acknowledged.
# TYPE rtmanager_pending_entries gauge
rtmanager_pending_entries{group="g",stream="jobs"} 2
`)))
}

func TestResultsAndBrokerEventsAreCounted(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.Result("success", "replay_no_op", 3*time.Millisecond)
	m.Result("success", "replay_no_op", time.Millisecond)
	m.DeadLettered("s", "invalid")
	m.Received("s", 7)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP rtmanager_job_results_total Jobs answered, by operation (start, stop), outcome and error code.
# TYPE rtmanager_job_results_total counter
rtmanager_job_results_total{error_code="replay_no_op",operation="stop",outcome="success"} 2
# HELP rtmanager_dead_letters_total Entries dead-lettered, by stream and reason.
# TYPE rtmanager_dead_letters_total counter
rtmanager_dead_letters_total{reason="invalid",stream="s"} 1
# HELP rtmanager_jobs_received_total Stream entries read, new or claimed, by stream.
# TYPE rtmanager_jobs_received_total counter
rtmanager_jobs_received_total{stream="s"} 7
`), "rtmanager_job_results_total", "rtmanager_dead_letters_total", "rtmanager_jobs_received_total"))
}

// A sharded channel is reported as one, under its address: the sum of its
// shard keys' pending entries and lag, up only when every shard's group is
// read.
func TestShardedGroupCollectorSumsTheShards(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	keys := []string{"jobs:{rt-0}", "jobs:{rt-1}"}
	c := metrics.NewShardedGroupCollector(rdb, "jobs", keys, "g")

	require.NoError(t, rdb.XGroupCreateMkStream(ctx, keys[0], "g", "0").Err())
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP rtmanager_consumer_group_up 1 when the group could be read from Redis at this scrape.
# TYPE rtmanager_consumer_group_up gauge
rtmanager_consumer_group_up{group="g",stream="jobs"} 0
`)), "one shard without its group: down")

	require.NoError(t, rdb.XGroupCreateMkStream(ctx, keys[1], "g", "0").Err())
	for i, k := range keys {
		for j := 0; j < 3+i; j++ {
			require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: k, Values: []string{"k", "v"}}).Err())
		}
		_, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{k, ">"}, Count: 2}).Result()
		require.NoError(t, err)
	}
	require.NoError(t, testutil.CollectAndCompare(c, strings.NewReader(`
# HELP rtmanager_consumer_group_lag Entries of the stream not yet delivered to the group.
# TYPE rtmanager_consumer_group_lag gauge
rtmanager_consumer_group_lag{group="g",stream="jobs"} 3
# HELP rtmanager_consumer_group_up 1 when the group could be read from Redis at this scrape.
# TYPE rtmanager_consumer_group_up gauge
rtmanager_consumer_group_up{group="g",stream="jobs"} 1
# HELP rtmanager_pending_entries Entries delivered to the group and not yet acknowledged.
# TYPE rtmanager_pending_entries gauge
rtmanager_pending_entries{group="g",stream="jobs"} 4
`)))
}
