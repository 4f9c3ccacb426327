package main

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

func TestComputeBoundTakesTheBusiestNode(t *testing.T) {
	r := clusterRun{Shards: 16, Drain: drainResult{Jobs: 10000, ClientCPUus: 50, RedisCPUus: 35},
		Nodes: []nodeRun{{Addr: "a", CPUs: 0.10}, {Addr: "b", CPUs: 0.20}, {Addr: "c", CPUs: 0.05}}}
	b := computeBound(&r)
	require.NotNil(t, b)
	assert.Equal(t, "b", b.BusiestNode)
	assert.InDelta(t, 50000, b.RedisBoundJobsPerS, 1e-6, "10000 jobs / 0.2 s on the busiest node")
	assert.InDelta(t, 2.5, b.ClientCores, 1e-9, "50 µs of client CPU per job at 50000 jobs/s")
	want := map[int]float64{1: 1e6 / 35, 3: 1e6 / (35 * 6.0 / 16), 4: 1e6 / (35 * 4.0 / 16), 8: 1e6 / (35 * 2.0 / 16), 16: 16e6 / 35}
	require.Len(t, b.ByMasters, len(want))
	for _, p := range b.ByMasters {
		assert.InDelta(t, want[p.Masters], p.RedisBoundJobsPerS, 1e-6, "M=%d", p.Masters)
	}

	one := clusterRun{Shards: 1, Drain: drainResult{Jobs: 10, RedisCPUus: 40}, Nodes: []nodeRun{{Addr: "a", CPUs: 0.0004}}}
	for _, p := range computeBound(&one).ByMasters {
		assert.InDelta(t, 25000, p.RedisBoundJobsPerS, 1e-6, "with S = 1 one master carries every job, whatever M")
	}
	assert.Nil(t, computeBound(&clusterRun{Shards: 1, Nodes: []nodeRun{{Addr: "a"}}}), "no CPU measured, nothing computed")
}

func TestClusterRatiosAreAgainstTheSingleRun(t *testing.T) {
	c := clusterReport{Runs: []clusterRun{
		{Key: "single", Shards: 1, Drain: drainResult{Jobs: 100, JobsPerS: 1000, ClientCPUus: 40, RedisCPUus: 30}, Nodes: []nodeRun{{Addr: "s", CPUs: 0.003}}},
		{Key: "cluster_s16", Shards: 16, Drain: drainResult{Jobs: 100, JobsPerS: 500, ClientCPUus: 60, RedisCPUus: 45}, Nodes: []nodeRun{{Addr: "a", CPUs: 0.001}, {Addr: "b", CPUs: 0.0015}}},
	}}
	c.derive()
	assert.Nil(t, c.Runs[0].VsSingle)
	v := c.Runs[1].VsSingle
	assert.InDelta(t, 0.5, v["drain_jobs_per_s"], 1e-9)
	assert.InDelta(t, 1.5, v["client_cpu_per_job"], 1e-9)
	assert.InDelta(t, 1.5, v["redis_cpu_per_job"], 1e-9)
	assert.InDelta(t, 2.0, v["computed_redis_bound"], 1e-9, "busiest node 1.5 ms against 3 ms")

	r := report{Cluster: &c}
	r.derive()
	assert.Equal(t, map[string]float64{"cluster_s16_vs_single": 0.5}, r.Ratios, "the drain ratio in the report's ratios too")
}

// TestClusterComparisonDrainsEachShardOnItsMaster runs the comparison at a
// small size: every run answers every job once, in its game's shard
// (clusterDrain checks it), and with S = 16 the shards and their jobs are
// spread over the three masters.
func TestClusterComparisonDrainsEachShardOnItsMaster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster; skipped under -short")
	}
	srv := testredis.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	const n = 400
	e := &env{cfg: config{Jobs: n, Games: n, Workers: 8, Timeout: time.Minute}, srv: srv, rdb: rdb, progress: t.Logf}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	rep, err := e.runCluster(ctx)
	require.NoError(t, err)
	require.Len(t, rep.Runs, 3)
	for i, want := range []struct {
		key             string
		masters, shards int
	}{{"single", 1, 1}, {"cluster_s1", 3, 1}, {"cluster_s16", 3, 16}} {
		r := rep.Runs[i]
		assert.Equal(t, want.key, r.Key)
		assert.Equal(t, want.shards, r.Shards, r.Key)
		require.Len(t, r.Nodes, want.masters, r.Key)
		require.Len(t, r.JobsPerShard, want.shards, r.Key)
		assert.Equal(t, int64(n), sum(r.JobsPerShard), r.Key)
		var jobs int64
		var shards []int
		for _, nd := range r.Nodes {
			jobs += nd.Jobs
			shards = append(shards, nd.Shards...)
		}
		assert.Equal(t, int64(n), jobs, "%s: every job counted on one master", r.Key)
		assert.ElementsMatch(t, seq(want.shards), shards, "%s: every shard on one master", r.Key)
		assert.Positive(t, r.Drain.JobsPerS, r.Key)
		require.NotNil(t, r.Computed, r.Key)
	}
	for _, c := range rep.Runs[2].JobsPerShard {
		assert.Positive(t, c, "400 games leave no shard of 16 empty")
	}
	busy := 0
	for _, nd := range rep.Runs[2].Nodes {
		if nd.Jobs > 0 {
			busy++
		}
	}
	assert.Equal(t, 3, busy, "S = 16 puts jobs on every master")
	busy = 0
	for _, nd := range rep.Runs[1].Nodes {
		if nd.Jobs > 0 {
			busy++
		}
	}
	assert.Equal(t, 1, busy, "S = 1 puts every job on one master")
	assert.Contains(t, rep.Runs[1].VsSingle, "drain_jobs_per_s")
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}
