package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/testredis"
)

// clusterReport is the cluster comparison: measured runs, and what they
// let one compute for masters on machines of their own.
type clusterReport struct {
	Runs []clusterRun `json:"runs"`
	// StartS is how long the local cluster took to form (not measured in
	// any run).
	StartS float64 `json:"cluster_start_s"`
}

type clusterRun struct {
	Key     string      `json:"key"`
	Name    string      `json:"name"`
	Masters int         `json:"masters"`
	Shards  int         `json:"shards"`
	Drain   drainResult `json:"drain"`
	// JobsPerShard are the results in each shard (shard 0 first).
	JobsPerShard []int64   `json:"jobs_per_shard"`
	Nodes        []nodeRun `json:"nodes"`
	// VsSingle are this run's figures over the single-Redis run's of the
	// same invocation.
	VsSingle map[string]float64 `json:"vs_single,omitempty"`
	// Computed, not measured: see computeBound.
	Computed *computedBound `json:"computed"`
}

type nodeRun struct {
	Addr   string `json:"addr"`
	Shards []int  `json:"shards"`
	Jobs   int64  `json:"jobs"`
	// CPUs is the node's INFO cpu (user+sys) over the drain, seconds.
	CPUs float64 `json:"cpu_s"`
	// CPUusPerJob is CPUs over all the drain's jobs; CPUusPerOwnJob over
	// the jobs of the shards it serves.
	CPUusPerJob    float64 `json:"cpu_us_per_job"`
	CPUusPerOwnJob float64 `json:"cpu_us_per_own_job"`
}

// computedBound is what the measured per-node CPU gives when every master
// has a machine (a core for its single command thread) of its own: the
// Redis side saturates when its busiest node does, at N jobs per that
// node's CPU seconds. The client side (rtmanager replicas) scales apart;
// ClientCores is what it needs at that rate, from the measured client CPU
// per job. Computed, not measured.
type computedBound struct {
	RedisBoundJobsPerS float64 `json:"redis_bound_jobs_per_s"`
	BusiestNode        string  `json:"busiest_node"`
	ClientCores        float64 `json:"client_cores_at_bound"`
	// ByMasters projects the Redis bound to M masters on M machines with
	// the run's S shards spread evenly (ceil(S/M) on the busiest) and the
	// run's Redis CPU per job: 1e6 / (CPU µs per job × ceil(S/M)/S), for
	// the M in projectedMasters. Beyond M = S a master gets no shard.
	ByMasters []projection `json:"by_masters"`
}

type projection struct {
	Masters            int     `json:"masters"`
	RedisBoundJobsPerS float64 `json:"redis_bound_jobs_per_s"`
}

// projectedMasters are the master counts of computedBound.ByMasters.
var projectedMasters = []int{1, 3, 4, 8, 16}

func computeBound(r *clusterRun) *computedBound {
	var b computedBound
	var busiest float64
	for _, n := range r.Nodes {
		if n.CPUs > busiest {
			busiest, b.BusiestNode = n.CPUs, n.Addr
		}
	}
	if busiest <= 0 {
		return nil
	}
	b.RedisBoundJobsPerS = float64(r.Drain.Jobs) / busiest
	b.ClientCores = b.RedisBoundJobsPerS * r.Drain.ClientCPUus / 1e6
	if r.Drain.RedisCPUus > 0 && r.Shards > 0 {
		for _, m := range projectedMasters {
			busiestShare := float64((r.Shards+m-1)/m) / float64(r.Shards)
			b.ByMasters = append(b.ByMasters, projection{Masters: m, RedisBoundJobsPerS: 1e6 / (r.Drain.RedisCPUus * busiestShare)})
		}
	}
	return &b
}

// derive fills each run's computed bound and its ratios to the single-Redis
// run.
func (c *clusterReport) derive() {
	var single *clusterRun
	for i := range c.Runs {
		c.Runs[i].Computed = computeBound(&c.Runs[i])
		if c.Runs[i].Key == "single" {
			single = &c.Runs[i]
		}
	}
	if single == nil {
		return
	}
	for i := range c.Runs {
		r := &c.Runs[i]
		if r == single {
			continue
		}
		v := map[string]float64{}
		ratio := func(name string, a, b float64) {
			if b > 0 {
				v[name] = a / b
			}
		}
		ratio("drain_jobs_per_s", r.Drain.JobsPerS, single.Drain.JobsPerS)
		ratio("client_cpu_per_job", r.Drain.ClientCPUus, single.Drain.ClientCPUus)
		ratio("redis_cpu_per_job", r.Drain.RedisCPUus, single.Drain.RedisCPUus)
		if r.Computed != nil && single.Computed != nil {
			ratio("computed_redis_bound", r.Computed.RedisBoundJobsPerS, single.Computed.RedisBoundJobsPerS)
		}
		r.VsSingle = v
	}
}

// runCluster drains the same backlog in process on the benchmark's
// redis-server, then on a local cluster with S = 1 and S = 16.
func (e *env) runCluster(ctx context.Context) (*clusterReport, error) {
	doc, err := api.Load()
	if err != nil {
		return nil, err
	}
	single, err := singleDeployment(e.srv, e.rdb, doc)
	if err != nil {
		return nil, err
	}
	rep := &clusterReport{}
	began := time.Now()
	e.progress("starting a local Redis Cluster of %d masters", clusterMasters)
	// No replicas: they would take CPU from the two cores for replication,
	// which the masters' figures do not need. A long node timeout: a node
	// held off the CPU for a moment on the loaded machine must not be
	// marked failed mid-run.
	c, err := testredis.NewCluster(testredis.ClusterOptions{Masters: clusterMasters, NodeTimeout: 15 * time.Second})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	rep.StartS = time.Since(began).Seconds()
	cc := c.Client()
	defer cc.Close()
	deps := []*deployment{single}
	for _, s := range []int{1, 16} {
		d, err := clusterDeployment(c, cc, doc, s)
		if err != nil {
			return nil, err
		}
		deps = append(deps, d)
	}
	for _, d := range deps {
		if e.cfg.Warmup > 0 {
			if _, err := e.clusterDrain(ctx, d, min(e.cfg.Warmup, e.cfg.Jobs)); err != nil {
				return nil, fmt.Errorf("%s: warm-up drain: %w", d.name, err)
			}
		}
		r, err := e.clusterDrain(ctx, d, e.cfg.Jobs)
		if err != nil {
			return nil, fmt.Errorf("%s: drain: %w", d.name, err)
		}
		e.progress("%s: drain %.0f jobs/s, redis CPU %.1f µs/job, client CPU %.1f µs/job", d.name, r.Drain.JobsPerS, r.Drain.RedisCPUus, r.Drain.ClientCPUus)
		rep.Runs = append(rep.Runs, r)
	}
	rep.derive()
	return rep, nil
}

func (c *clusterReport) print(w io.Writer) {
	fmt.Fprintf(w, "\nscaling on a Redis Cluster (in process, --workers as above; cluster of %d masters, no replicas, on this machine):\n", clusterMasters)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "deployment\tdrain jobs/s\tvs single\tredis CPU µs/job\tclient CPU µs/job\tvs single (client)\t")
	for _, r := range c.Runs {
		vs, vc := "1.00", "1.00"
		if r.VsSingle != nil {
			vs, vc = fmt.Sprintf("%.2f", r.VsSingle["drain_jobs_per_s"]), fmt.Sprintf("%.2f", r.VsSingle["client_cpu_per_job"])
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.1f\t%.1f\t%s\t\n", r.Name, r.Drain.JobsPerS, vs, r.Drain.RedisCPUus, r.Drain.ClientCPUus, vc)
	}
	tw.Flush()
	fmt.Fprintln(w, "  per master: shards, jobs, CPU µs per job of the drain / per job of its own shards")
	for _, r := range c.Runs {
		parts := make([]string, len(r.Nodes))
		for i, n := range r.Nodes {
			parts[i] = fmt.Sprintf("%s: %d shards, %d jobs, %.1f / %.1f", n.Addr, len(n.Shards), n.Jobs, n.CPUusPerJob, n.CPUusPerOwnJob)
		}
		fmt.Fprintf(w, "  %-28s %s\n", r.Name, strings.Join(parts, "; "))
		if r.Shards > 1 {
			fmt.Fprintf(w, "  %-28s jobs per shard %s\n", "", joinInts(r.JobsPerShard))
		}
	}
	fmt.Fprintln(w, "  COMPUTED, not measured: each master on a machine of its own, the Redis side saturates when its busiest node does (jobs / that node's CPU s);")
	fmt.Fprintln(w, "  the rtmanager replicas scale apart and would need the client cores shown. The 2 cores here run every node and the client, so the measured drains cannot show it.")
	for _, r := range c.Runs {
		if r.Computed == nil {
			continue
		}
		note := ""
		if v, ok := r.VsSingle["computed_redis_bound"]; ok {
			note = fmt.Sprintf(" (%.2f × single)", v)
		}
		fmt.Fprintf(w, "  %-28s Redis bound %.0f jobs/s%s, client cores at that rate %.1f\n", r.Name, r.Computed.RedisBoundJobsPerS, note, r.Computed.ClientCores)
	}
	fmt.Fprintln(w, "  COMPUTED: S shards spread evenly over M masters on M machines, at each run's Redis CPU per job (jobs/s):")
	for _, r := range c.Runs {
		if r.Computed == nil || len(r.Computed.ByMasters) == 0 {
			continue
		}
		parts := make([]string, len(r.Computed.ByMasters))
		for i, p := range r.Computed.ByMasters {
			parts[i] = fmt.Sprintf("M=%d %.0f", p.Masters, p.RedisBoundJobsPerS)
		}
		fmt.Fprintf(w, "  %-28s %s\n", r.Name, strings.Join(parts, ", "))
	}
}
