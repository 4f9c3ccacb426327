package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

type report struct {
	Machine  machineInfo     `json:"machine"`
	Config   reportConfig    `json:"config"`
	RTInproc *pipelineReport `json:"rtmanager_inproc,omitempty"`
	RTBinary *pipelineReport `json:"rtmanager_binary,omitempty"`
	Old      *pipelineReport `json:"old_design,omitempty"`
	Ceiling  *pipelineReport `json:"redis_ceiling,omitempty"`
	// CeilingProcess is the ceiling's loop in a process of its own.
	CeilingProcess *pipelineReport    `json:"redis_ceiling_process,omitempty"`
	WorkerScaling  []workerPoint      `json:"worker_scaling,omitempty"`
	Processes      []procPoint        `json:"processes,omitempty"`
	Ratios         map[string]float64 `json:"ratios"`
	// Targets: each rtmanager pipeline against the ceiling of this run
	// (targets.go); TargetsPass is true when every one evaluated passed.
	Targets     []target `json:"targets,omitempty"`
	TargetsPass bool     `json:"targets_pass"`
	// BinaryVsCeilingProcess holds the binary to the same limits against
	// the ceiling in a process of its own: what rtmanager adds beyond the
	// process boundary. Not issue 16's targets, which stay against the
	// ceiling in rtbench's process.
	BinaryVsCeilingProcess []target    `json:"binary_vs_ceiling_process,omitempty"`
	Mass                   *massResult `json:"mass_stop,omitempty"`
	// GeneratedFloor is the generated controllers alone (floor.go).
	GeneratedFloor *floorReport `json:"generated_floor,omitempty"`
	// Cluster is the comparison with a Redis Cluster (clusterreport.go).
	Cluster   *clusterReport `json:"scaling_cluster,omitempty"`
	DurationS float64        `json:"duration_s"`
}

type machineInfo struct {
	NumCPU     int    `json:"nproc"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPU        string `json:"cpu"`
	Go         string `json:"go"`
	Redis      string `json:"redis"`
	OS         string `json:"os"`
	// Stalls is what a thread spinning alone on the clock saw at the start
	// (--stall-probe): how often it did not run for over a millisecond.
	Stalls *stallInfo `json:"stalls,omitempty"`
}

type stallInfo struct {
	Seconds   float64 `json:"seconds"`
	Over1ms   int     `json:"over_1ms"`
	Over3ms   int     `json:"over_3ms"`
	LongestMs float64 `json:"longest_ms"`
}

type reportConfig struct {
	Jobs          int       `json:"jobs"`
	Games         int       `json:"games"`
	Rates         []float64 `json:"rates"`
	RateDurationS float64   `json:"rate_duration_s"`
	Workers       int       `json:"workers"`
	Batch         int       `json:"batch"`
	BinaryEnv     []string  `json:"binary_env,omitempty"`
	Smoke         bool      `json:"smoke,omitempty"`
}

type pipelineReport struct {
	Name    string          `json:"name"`
	Drain   drainResult     `json:"drain"`
	Latency []latencyResult `json:"latency,omitempty"`
}

type drainResult struct {
	Jobs       int     `json:"jobs"`
	JobsPerS   float64 `json:"jobs_per_s"`
	Results    int64   `json:"results"`
	RedisCPUus float64 `json:"redis_cpu_us_per_job"`
	// ClientCPUus is the consumer's side: rtbench's own CPU over the drain
	// (the in-process pipelines run in it) plus the rtmanager processes'.
	ClientCPUus float64 `json:"client_cpu_us_per_job"`
	// SwitchesPerJob is the context switches of the same processes over
	// the drain per job: how often their threads slept and were woken
	// (getrusage's nvcsw + nivcsw).
	SwitchesPerJob float64 `json:"ctx_switches_per_job"`
	// AllocsPerJob and AllocBytesPerJob are this process's heap
	// allocations over the drain per job (runtime.MemStats): the in-process
	// pipelines' own, steady from run to run where CPU on shared cores is
	// not. Of a binary pipeline they count only rtbench's side.
	AllocsPerJob     float64   `json:"allocs_per_job"`
	AllocBytesPerJob float64   `json:"alloc_bytes_per_job"`
	Spread           []int64   `json:"acks_per_process,omitempty"`
	PeakRSSMiB       []float64 `json:"peak_rss_mib,omitempty"`
	// GCs is each rtmanager process's garbage collections over its life
	// (go_gc_duration_seconds_count at the end; a binary pipeline runs a
	// fresh process per drain).
	GCs []int64 `json:"gc_cycles_per_process,omitempty"`
	// OwnGCs is rtbench's own garbage collections over the drain: the
	// in-process pipelines' (they share rtbench's heap).
	OwnGCs int64 `json:"gc_cycles_rtbench"`
}

type latencyResult struct {
	Fraction     float64 `json:"fraction"`
	OfferedPerS  float64 `json:"offered_per_s"`
	AchievedPerS float64 `json:"sent_per_s"`
	Jobs         int     `json:"jobs"`
	Missing      int     `json:"missing"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	P999ms       float64 `json:"p999_ms"`
	Maxms        float64 `json:"max_ms"`
	// The same quantiles by the entry ids of job and result (the server's
	// clock, whole milliseconds, each latency within 1 ms): what the
	// pipeline took without rtbench's own sending and reading.
	IDP50ms  float64 `json:"ids_p50_ms"`
	IDP99ms  float64 `json:"ids_p99_ms"`
	IDP999ms float64 `json:"ids_p999_ms"`
	// CPU per job over the run, from the first job offered to the last
	// result read: Redis's, and the client side's: rtbench's process (its
	// offering and its reading of the results, the same for every
	// pipeline, and an in-process pipeline) plus the pipeline's own
	// processes. At partial load a pipeline's batches are smaller than in
	// a drain, so this is where the cost of each round trip shows.
	RedisCPUus  float64   `json:"redis_cpu_us_per_job"`
	ClientCPUus float64   `json:"client_cpu_us_per_job"`
	PeakRSSMiB  []float64 `json:"peak_rss_mib,omitempty"`
	// The unmeasured warm-up before the run (--rate-warmup): its jobs and
	// their p99, which starts from a pipeline that has just started.
	WarmupJobs  int     `json:"warmup_jobs,omitempty"`
	WarmupP99ms float64 `json:"warmup_p99_ms,omitempty"`

	// In-process pipelines: this process's garbage collections over the
	// run (gcshare.go).
	GC *gcShare `json:"gc,omitempty"`

	samples []latSample // with --latency-csv
}

type workerPoint struct {
	Workers  int     `json:"workers"`
	JobsPerS float64 `json:"jobs_per_s"`
}

type procPoint struct {
	Processes  int       `json:"processes"`
	JobsPerS   float64   `json:"jobs_per_s"`
	Spread     []int64   `json:"acks_per_process"`
	PeakRSSMiB []float64 `json:"peak_rss_mib"`
}

func (r *report) set(key string, p pipelineReport) {
	switch key {
	case "rtmanager_inproc":
		r.RTInproc = &p
	case "rtmanager_binary":
		r.RTBinary = &p
	case "old_design":
		r.Old = &p
	case "redis_ceiling":
		r.Ceiling = &p
	case "redis_ceiling_process":
		r.CeilingProcess = &p
	}
}

func (r *report) derive() {
	r.Ratios = map[string]float64{}
	ratio := func(name string, a, b *pipelineReport) {
		if a != nil && b != nil && b.Drain.JobsPerS > 0 {
			r.Ratios[name] = a.Drain.JobsPerS / b.Drain.JobsPerS
		}
	}
	ratio("inproc_vs_old", r.RTInproc, r.Old)
	ratio("inproc_vs_ceiling", r.RTInproc, r.Ceiling)
	ratio("binary_vs_old", r.RTBinary, r.Old)
	ratio("binary_vs_ceiling", r.RTBinary, r.Ceiling)
	ratio("ceiling_vs_old", r.Ceiling, r.Old)
	ratio("binary_vs_ceiling_process", r.RTBinary, r.CeilingProcess)
	ratio("ceiling_process_vs_ceiling", r.CeilingProcess, r.Ceiling)
	if r.Cluster != nil {
		// The cluster runs' drains over the single server's of the same
		// run; the rest of their ratios are in scaling_cluster.
		for _, c := range r.Cluster.Runs {
			if v, ok := c.VsSingle["drain_jobs_per_s"]; ok {
				r.Ratios[c.Key+"_vs_single"] = v
			}
		}
	}
	if f := r.GeneratedFloor; f != nil && r.Ceiling != nil && r.Ceiling.Drain.ClientCPUus > 0 {
		f.VsCeiling = f.ClientCPUus / r.Ceiling.Drain.ClientCPUus
	}
	r.Targets = deriveTargets(r.RTInproc, r.RTBinary, r.Ceiling)
	r.TargetsPass = allPass(r.Targets)
	if r.RTBinary != nil && r.CeilingProcess != nil {
		r.BinaryVsCeilingProcess = againstCeiling("binary", "_vs_ceiling_process", r.RTBinary, r.CeilingProcess)
	}
}

func (r *report) print(w io.Writer) {
	m := r.Machine
	fmt.Fprintf(w, "\nmachine: %d CPUs (%s), GOMAXPROCS %d, %s, redis %s, %s\n", m.NumCPU, m.CPU, m.GOMAXPROCS, m.Go, m.Redis, m.OS)
	if st := m.Stalls; st != nil {
		fmt.Fprintf(w, "stalls: one thread spinning alone for %.0fs: gaps over 1 ms %d, over 3 ms %d, longest %.2f ms\n",
			st.Seconds, st.Over1ms, st.Over3ms, st.LongestMs)
	}
	if r.Config.Smoke {
		fmt.Fprintln(w, "smoke run (--smoke): every part at tiny sizes, to check it runs; the figures mean nothing")
	}
	fmt.Fprintf(w, "workload: N=%d stop jobs over K=%d games (running, runtime none); latency runs %.1fs each\n\n", r.Config.Jobs, r.Config.Games, r.Config.RateDurationS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "pipeline\tdrain jobs/s\tredis CPU µs/job\tclient CPU µs/job\trate\toffered/s\tjobs\tp50 ms\tp99 ms\tp99.9 ms\tmax ms\tids p50/p99/p99.9 ms\tmissing\t")
	for _, p := range []*pipelineReport{r.RTInproc, r.RTBinary, r.Old, r.Ceiling, r.CeilingProcess} {
		if p == nil {
			continue
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.1f\t%.1f\t\t\t\t\t\t\t\t\t\t\n", p.Name, p.Drain.JobsPerS, p.Drain.RedisCPUus, p.Drain.ClientCPUus)
		for _, l := range p.Latency {
			fmt.Fprintf(tw, "\t\t%.1f\t%.1f\t%.0f%%\t%.0f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.0f / %.0f / %.0f\t%d\t\n", l.RedisCPUus, l.ClientCPUus, l.Fraction*100, l.OfferedPerS, l.Jobs, l.P50ms, l.P99ms, l.P999ms, l.Maxms, l.IDP50ms, l.IDP99ms, l.IDP999ms, l.Missing)
		}
	}
	tw.Flush()
	if len(r.WorkerScaling) > 0 {
		fmt.Fprintln(w, "\nrtmanager in process, --workers scaling (drain):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "workers\tjobs/s\t")
		for _, p := range r.WorkerScaling {
			fmt.Fprintf(tw, "%d\t%.0f\t\n", p.Workers, p.JobsPerS)
		}
		tw.Flush()
	}
	if len(r.Processes) > 0 {
		fmt.Fprintf(w, "\nrtmanager binary%s, processes in one consumer group (drain):\n", envNote(r.Config.BinaryEnv))
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "processes\tjobs/s\tacks per process\tpeak RSS MiB per process\t")
		for _, p := range r.Processes {
			fmt.Fprintf(tw, "%d\t%.0f\t%s\t%s\t\n", p.Processes, p.JobsPerS, joinInts(p.Spread), joinFloats(p.PeakRSSMiB))
		}
		tw.Flush()
	}
	if len(r.Ratios) > 0 {
		fmt.Fprintln(w, "\nratios of drain throughput:")
		for _, k := range []string{"inproc_vs_old", "inproc_vs_ceiling", "binary_vs_old", "binary_vs_ceiling", "ceiling_vs_old", "binary_vs_ceiling_process", "ceiling_process_vs_ceiling", "cluster_s1_vs_single", "cluster_s16_vs_single"} {
			if v, ok := r.Ratios[k]; ok {
				fmt.Fprintf(w, "  %-27s %.2f\n", k, v)
			}
		}
	}
	if len(r.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets, against the Redis ceiling of this run:")
		printTargets(w, r.Targets)
		if r.TargetsPass {
			fmt.Fprintln(w, "  all targets pass")
		} else {
			fmt.Fprintln(w, "  NOT all targets pass")
		}
	}
	if f := r.GeneratedFloor; f != nil {
		f.print(w)
	}
	if len(r.BinaryVsCeilingProcess) > 0 {
		fmt.Fprintln(w, "\nthe binary at the same limits against the ceiling in a process of its own (what rtmanager adds beyond the process boundary; not the targets):")
		printTargets(w, r.BinaryVsCeilingProcess)
	}
	if r.Cluster != nil {
		r.Cluster.print(w)
	}
	if m := r.Mass; m != nil {
		fmt.Fprintf(w, "\nmass stop: %d games (runtime process) whose engines exit %.1fs after SIGTERM, stopped at once by the rtmanager binary with default flags (--workers %d); engines started in %.1fs\n",
			m.Games, m.DelayS, m.Workers, m.EnginesStartS)
		if m.SettleS >= 0.1 {
			fmt.Fprintf(w, "jobs written %.1fs after rtmanager was ready (--mass-settle)\n", m.SettleS)
		}
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "jobs written s\tall begun s\tfirst result s\tall results s\tfloor s\tone stop per worker s\tvs floor\tvs per worker\tfast game begun ms\tfast game ms\trtmanager peak RSS MiB\trtmanager CPU s\tresults\texactly once\t")
		fmt.Fprintf(tw, "%.3f\t%.3f\t%.3f\t%.3f\t%.1f\t%.1f\t%.2f\t%.2f\t%d\t%d\t%.1f\t%.2f\t%d\t%v\t\n",
			m.WrittenS, m.BegunS, m.FirstResultS, m.AllResultsS, m.FloorS, m.PerWorkerS, m.VsFloor, m.VsPerWorker, m.FastBeginMS, m.FastMS, m.PeakRSSMiB, m.CPUS, m.Results, m.ExactlyOnce)
		tw.Flush()
		fmt.Fprintln(w, "  times from the first job's entry id to the entry ids of the last job, the first result and the last result (server clock); all begun: the last begin step (started_at_ms of the operation log); fast game: a game whose engine exits at once, its job written right after the others, result id (begun: its begin step) less job id")
		if m.MeasuredFloorS > 0 {
			fmt.Fprintf(w, "  measured floor (--mass-floor): %d fresh engines sent SIGTERM straight from rtbench, no rtmanager or Redis, all exited %.2fs after the first signal; all results / measured floor %.2f\n",
				m.Games, m.MeasuredFloorS, m.VsMeasured)
		}
	}
	fmt.Fprintf(w, "\ntotal %.1fs\n", r.DurationS)
}

func joinInts(v []int64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, " / ")
}

func joinFloats(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf("%.1f", x)
	}
	return strings.Join(s, " / ")
}

// printTargets writes one line per ratio with its limit and verdict.
func printTargets(w io.Writer, ts []target) {
	for _, t := range ts {
		verdict := "pass"
		if !t.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "  %-48s %5.2f  (want %s %.1f)  %s\n", t.Name, t.Ratio, t.Op, t.Limit, verdict)
	}
}
