package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/metrics"
	"galaxy/rtmanager/internal/redisclient"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/runtimes/none"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/service"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// The cluster comparison (issue 15): the in-process pipeline, wired as
// cmd/rtmanager wires it, draining the same backlog on one redis-server and
// on a local Redis Cluster of clusterMasters masters with S = 1 and S = 16.

const clusterMasters = 3

// deployment is one Redis the comparison drains against, with its layout.
type deployment struct {
	key, name string
	url       string                // the pipeline's --redis-url
	rdb       redis.UniversalClient // rtbench's own client: producer, checks
	layout    api.Layout
	doc       *api.Document
	// nodes are the masters, each read for its CPU.
	nodes []string
	// masterOf maps each job-stream shard to the address of its master.
	masterOf func(ctx context.Context, key string) (string, error)
}

func (d *deployment) channel(key string) *api.Channel { return d.doc.Channels[key] }

func (d *deployment) store() *runtimestore.Store {
	return runtimestore.New(d.rdb, runtimestore.Options{Layout: d.layout})
}

// singleDeployment is the benchmark's own redis-server with S = 1 (the plain
// keys of a single-Redis deployment).
func singleDeployment(srv *testredis.Server, rdb *redis.Client, doc *api.Document) (*deployment, error) {
	l, err := api.NewLayout(doc, 1, false)
	if err != nil {
		return nil, err
	}
	return &deployment{
		key: "single", name: "one redis-server, S = 1", url: srv.URL(), rdb: rdb, layout: l, doc: doc,
		nodes:    []string{srv.Addr()},
		masterOf: func(context.Context, string) (string, error) { return srv.Addr(), nil },
	}, nil
}

// clusterDeployment is c with S shards.
func clusterDeployment(c *testredis.Cluster, rdb *redis.ClusterClient, doc *api.Document, shards int) (*deployment, error) {
	l, err := api.NewLayout(doc, shards, true)
	if err != nil {
		return nil, err
	}
	d := &deployment{
		key: "cluster_s" + strconv.Itoa(shards), name: fmt.Sprintf("cluster, %d masters, S = %d", clusterMasters, shards),
		url: c.URL(), rdb: rdb, layout: l, doc: doc,
		masterOf: func(ctx context.Context, key string) (string, error) {
			n, err := c.MasterOf(ctx, key)
			if err != nil {
				return "", err
			}
			return n.Addr(), nil
		},
	}
	for _, n := range c.Nodes()[:clusterMasters] {
		d.nodes = append(d.nodes, n.Addr())
	}
	return d, nil
}

// flush empties every master.
func (d *deployment) flush(ctx context.Context) error {
	if cc, ok := d.rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.FlushAll(ctx).Err() })
	}
	return d.rdb.FlushAll(ctx).Err()
}

// reset flushes and registers the K records as running, each under its
// layout's key (on a cluster through a cluster pipeline, split by node).
func (d *deployment) reset(ctx context.Context, games int) error {
	if err := d.flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	st := d.store()
	now := time.Now().UnixMilli()
	const chunk = 2000
	for i := 0; i < games; i += chunk {
		p := d.rdb.Pipeline()
		for j := i; j < min(games, i+chunk); j++ {
			p.HSet(ctx, st.RecordKey(gameID(j)), "status", "running", "container_id", "none-"+strconv.Itoa(j),
				"engine_endpoint", "127.0.0.1:7000", "runtime", "none", "updated_at_ms", now)
		}
		if _, err := p.Exec(ctx); err != nil {
			return fmt.Errorf("register records: %w", err)
		}
	}
	return nil
}

// fill writes n jobs, each to its game's shard: what Lobby's jobclient
// does, pipelined.
func (d *deployment) fill(ctx context.Context, n, games int) error {
	ch := d.channel("stopJobs")
	const chunk = 2000
	for i := 0; i < n; i += chunk {
		p := d.rdb.Pipeline()
		for j := i; j < min(n, i+chunk); j++ {
			g := j % games
			p.XAdd(ctx, &redis.XAddArgs{Stream: d.layout.Key(ch, d.layout.ShardOf(gameID(g))), Values: jobValues(g)})
		}
		if _, err := p.Exec(ctx); err != nil {
			return fmt.Errorf("write jobs: %w", err)
		}
	}
	return nil
}

// resultCounts are XLEN of every result shard, shard 0 first.
func (d *deployment) resultCounts(ctx context.Context) ([]int64, error) {
	keys := d.layout.Keys(d.channel("jobResults"))
	p := d.rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(keys))
	for i, k := range keys {
		cmds[i] = p.XLen(ctx, k)
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, err
	}
	out := make([]int64, len(keys))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

func sum(v []int64) int64 {
	var t int64
	for _, x := range v {
		t += x
	}
	return t
}

// nodeCPU is INFO cpu (user+sys, seconds) of each master, read on a
// connection of its own.
func (d *deployment) nodeCPU(ctx context.Context) []float64 {
	out := make([]float64, len(d.nodes))
	for i, a := range d.nodes {
		c := redis.NewClient(&redis.Options{Addr: a, PoolSize: 1})
		out[i] = redisCPU(ctx, c)
		_ = c.Close()
	}
	return out
}

// startInproc starts the in-process pipeline on d: the wiring of
// cmd/rtmanager (internal/service, the runtime store on the same layout,
// the none driver), its client built from d's URL as cmd/rtmanager builds
// it.
func (d *deployment) startInproc(ctx context.Context, workers int) (func() error, error) {
	rdb, err := redisclient.New(d.url, redisclient.Tuning{MinPoolSize: workers + 8, Protocol: 2})
	if err != nil {
		return nil, err
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := stopruntime.New(runtimestore.New(rdb, runtimestore.Options{Layout: d.layout, Logger: log}),
		map[string]stopruntime.Driver{stopruntime.RuntimeNone: none.Driver{}},
		stopruntime.Options{StopGrace: stopruntime.DefaultStopGrace, Logger: log, TakeoverAfter: stopruntime.TakeoverFor(stopruntime.DefaultStopGrace)})
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	m := metrics.New(prometheus.NewRegistry())
	run, err := service.Start(ctx, rdb, service.Options{
		Stopper: svc, Workers: workers, Contract: d.doc, Logger: log, Metrics: m,
		Broker: redisstream.Options{
			Groups:   map[string]string{runtimejobs.StopJobsChannelPath: groupName},
			Consumer: "bench-" + d.key,
			StartID:  "0",
			Observer: m,
			Shards:   d.layout.Shards,
		},
	})
	if err != nil {
		_ = rdb.Close()
		return nil, err
	}
	stop := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := run.Close(sctx)
		_ = rdb.Close()
		return err
	}
	if got := run.Broker.Layout(); got != d.layout {
		_ = stop()
		return nil, fmt.Errorf("the broker's layout (%d shards, sharded %t) is not the store's (%d, %t)", got.Shards, got.Sharded, d.layout.Shards, d.layout.Sharded)
	}
	return stop, nil
}

// waitGroups returns once the consumer group exists on every job shard.
func (d *deployment) waitGroups(ctx context.Context) error {
	for _, k := range d.layout.Keys(d.channel("stopJobs")) {
		for {
			gs, err := d.rdb.XInfoGroups(ctx, k).Result()
			if err == nil && len(gs) > 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("group on %s: %w", k, ctx.Err())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return nil
}

// clusterDrain is one measured drain of n jobs on d.
func (e *env) clusterDrain(ctx context.Context, d *deployment, n int) (clusterRun, error) {
	run := clusterRun{Key: d.key, Name: d.name, Shards: d.layout.Shards, Masters: len(d.nodes)}
	if err := d.reset(ctx, e.cfg.Games); err != nil {
		return run, err
	}
	if err := d.fill(ctx, n, e.cfg.Games); err != nil {
		return run, err
	}
	cpu0, own0 := d.nodeCPU(ctx), ownCPU()
	stop, err := d.startInproc(ctx, e.cfg.Workers)
	if err != nil {
		return run, err
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = d.waitGroups(rctx)
	cancel()
	if err != nil {
		_ = stop()
		return run, fmt.Errorf("pipeline not ready: %w", err)
	}
	deadline := time.Now().Add(e.cfg.Timeout)
	var counts []int64
	for {
		counts, err = d.resultCounts(ctx)
		if err != nil || sum(counts) >= int64(n) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(drainPoll)
	}
	cpu1 := d.nodeCPU(ctx)
	stopErr := stop()
	ownSec := ownCPU() - own0
	if err != nil {
		return run, err
	}
	if stopErr != nil {
		return run, stopErr
	}
	if counts, err = d.resultCounts(ctx); err != nil {
		return run, err
	}
	if got := sum(counts); got != int64(n) {
		return run, fmt.Errorf("%d results for %d jobs", got, n)
	}
	first, last, err := d.checkResults(ctx)
	if err != nil {
		return run, err
	}
	if err := d.checkStopped(ctx, min(n, e.cfg.Games)); err != nil {
		return run, err
	}
	span := float64(last-first) / 1000
	if span <= 0 {
		span = 0.001
	}
	var redisSec float64
	for i := range cpu1 {
		redisSec += cpu1[i] - cpu0[i]
	}
	run.Drain = drainResult{Jobs: n, Results: int64(n), JobsPerS: float64(n-1) / span,
		RedisCPUus: redisSec * 1e6 / float64(n), ClientCPUus: ownSec * 1e6 / float64(n)}
	run.JobsPerShard = counts
	return run, d.perNode(ctx, &run, cpu0, cpu1)
}

// checkResults fails unless every result sits in its game's shard, and
// returns the first and last result's append time (entry ids, ms) over all
// shards: the nodes share this machine's clock.
func (d *deployment) checkResults(ctx context.Context) (first, last int64, err error) {
	ch := d.channel("jobResults")
	for shard, k := range d.layout.Keys(ch) {
		msgs, err := d.rdb.XRange(ctx, k, "-", "+").Result()
		if err != nil {
			return 0, 0, fmt.Errorf("read results of %s: %w", k, err)
		}
		for _, m := range msgs {
			g, _ := m.Values["game_id"].(string)
			if d.layout.ShardOf(g) != shard {
				return 0, 0, fmt.Errorf("the result of game %q is in shard %d, not in its shard %d", g, shard, d.layout.ShardOf(g))
			}
			ms := idMS(m.ID)
			if first == 0 || ms < first {
				first = ms
			}
			last = max(last, ms)
		}
	}
	if first == 0 {
		return 0, 0, errors.New("no result")
	}
	return first, last, nil
}

// checkStopped fails unless every one of the first games has its record
// stopped (the drain made every transition, not only one result per job).
func (d *deployment) checkStopped(ctx context.Context, games int) error {
	st := d.store()
	const chunk = 2000
	for i := 0; i < games; i += chunk {
		p := d.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, 0, chunk)
		for j := i; j < min(games, i+chunk); j++ {
			cmds = append(cmds, p.HGet(ctx, st.RecordKey(gameID(j)), "status"))
		}
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("read the records' status: %w", err)
		}
		for k, c := range cmds {
			if c.Val() != stopruntime.StatusStopped {
				return fmt.Errorf("%s is %q after the drain", gameID(i+k), c.Val())
			}
		}
	}
	return nil
}

// perNode fills run's per-master figures: the shards and jobs each served
// and its CPU over the drain.
func (d *deployment) perNode(ctx context.Context, run *clusterRun, cpu0, cpu1 []float64) error {
	idx := map[string]int{}
	for i, a := range d.nodes {
		idx[a] = i
		run.Nodes = append(run.Nodes, nodeRun{Addr: a, Shards: []int{}, CPUs: cpu1[i] - cpu0[i]})
	}
	for shard, k := range d.layout.Keys(d.channel("stopJobs")) {
		a, err := d.masterOf(ctx, k)
		if err != nil {
			return fmt.Errorf("master of %s: %w", k, err)
		}
		i, ok := idx[a]
		if !ok {
			return fmt.Errorf("%s is served by %s, no master of this run", k, a)
		}
		run.Nodes[i].Shards = append(run.Nodes[i].Shards, shard)
		run.Nodes[i].Jobs += run.JobsPerShard[shard]
	}
	for i := range run.Nodes {
		nd := &run.Nodes[i]
		sort.Ints(nd.Shards)
		nd.CPUusPerJob = nd.CPUs * 1e6 / float64(run.Drain.Jobs)
		if nd.Jobs > 0 {
			nd.CPUusPerOwnJob = nd.CPUs * 1e6 / float64(nd.Jobs)
		}
	}
	return nil
}
