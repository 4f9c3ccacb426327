// Command rtbench measures stop-job throughput and latency of rtmanager next
// to the old consumer's design and the Redis ceiling, on one private
// redis-server (internal/testredis) in one run. `make bench` runs it with
// its defaults; `rtbench --help` lists the flags.
//
// Workload: N stop jobs (XADD runtime:stop_jobs game_id g-<i mod K> reason
// game_finished requested_at_ms …) over K games whose records are `running`
// with runtime `none`; every pipeline writes one result per job to
// runtime:job_results. Before every measured run the server is flushed and
// the K records are registered again.
//
// Pipelines:
//   - rtmanager (in process): the wiring of cmd/rtmanager (generated
//     AppControllers on the redisstream broker with its middleware, the
//     stopjobs handler, the stopruntime orchestrator on runtimestore, the
//     none driver, Prometheus metrics), logs at warn to io.Discard.
//   - rtmanager (binary): go build ./cmd/rtmanager, run with --runtime none
//     --log-level warn, 1, 2 and 3 processes in one consumer group.
//   - old design: one XREAD COUNT 1 loop from a stored offset, the same
//     orchestrator call, one result XADD and one offset SET per entry.
//   - Redis ceiling: XREADGROUP COUNT b, the same stop transition (the
//     runtimestore Lua scripts and operation log entry) pipelined for the
//     batch, then MULTI(XADD results…, XACK ids…) — no framework.
//
// Drain throughput: a backlog of N is written first, then the consumer is
// started; jobs/s = (N-1) / (time of the last result − time of the first
// result), both taken from the result entries' ids (server clock, ms). Each
// pipeline first drains an unmeasured --warmup backlog. Beside it: Redis
// CPU and client CPU (this process and its children) per job.
//
// Latency: a paced producer offers a fixed rate (a fraction of the
// pipeline's own drain rate) for a fixed time, sending every millisecond the
// jobs that came due in one pipeline; each job's send time is taken just
// before its pipeline is written and kept in memory by entry id; a tail
// (XREAD BLOCK on runtime:job_results) takes the arrival time of each result
// and matches its job_id. Latency = arrival − send (so it includes the
// tail's own read). Each run starts a fresh pipeline, offered the same rate
// for --rate-warmup first, unmeasured (other games, every result awaited):
// the run measures a pipeline that is serving, as the drains do after
// --warmup; the warm-up's own p99 (a pipeline just started) is reported
// beside it.
//
// Targets (issue 16): each rtmanager pipeline's drain rate, p99 at 50 % and
// CPU per job as ratios to the Redis ceiling of the same run, with pass/fail
// (targets.go).
//
// Mass stop (mass.go, engines.go): N real local processes that exit a delay
// after SIGTERM, registered as running games with runtime process, all
// stopped at once through the built rtmanager with its default flags; time
// to all results against the delay and against one stop per worker,
// rtmanager's peak RSS, and the latency of one fast game's job behind them.
//
// Redis Cluster (cluster.go, clusterreport.go; docs/scaling.md): the
// in-process drain on this redis-server and on a local cluster of 3 masters
// with S = 1 and S = 16, each job written to its game's shard; jobs/s,
// client CPU and each master's Redis CPU per job, jobs per shard and per
// master, ratios to the single server, and the throughput a machine per
// master would give, computed from the per-master CPU.
//
// --smoke runs every part at tiny sizes (TestSmokeRunsEveryPipeline).
//
// Before the runs, one thread spins on the clock for --stall-probe and counts
// the times it was stopped for over a millisecond: the machine's own stalls,
// which no pipeline's latency can beat.
//
// The last line of the output is one JSON object with every figure.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/service"
	"galaxy/rtmanager/internal/testredis"
)

type config struct {
	Jobs         int
	Games        int
	Rates        []float64
	RateDuration time.Duration
	Workers      int
	WorkerScale  []int
	Procs        []int
	Batch        int
	Timeout      time.Duration
	Skip         map[string]bool
	CPUProfile   string
	MemProfile   string
	BinDir       string
	CommandStats bool
	Warmup       int
	RateWarmup   time.Duration
	LatencyCSV   string
	StallProbe   time.Duration
	BinaryEnv    []string // KEY=VALUE added to the environment of each rtmanager process
	Trace        string
	MassN        int
	MassDelay    time.Duration
	MassFloor    bool
	MassSettle   time.Duration
	MassEngine   string
	Smoke        bool
	// ModuleDir is where `go build ./cmd/rtmanager` runs (default the
	// working directory); tests set it to the module root.
	ModuleDir string
}

// skipParts are the parts --skip names.
var skipParts = []string{"inproc", "binary", "old", "ceiling", "ceiling-process", "floor", "scaling", "procs", "latency", "cluster", "mass"}

// smokeFlags are the values --smoke gives the flags not set explicitly:
// every pipeline and run, tiny, so it finishes in seconds (`go test`
// runs it to keep the pipelines in step with the real code).
var smokeFlags = [][2]string{
	{"jobs", "300"}, {"warmup", "0"}, {"rates", "0.5"}, {"rate-duration", "300ms"}, {"rate-warmup", "100ms"},
	{"worker-scaling", "1,64"}, {"procs", "1,2"}, {"stall-probe", "0"}, {"timeout", "30s"},
	{"mass-n", "50"}, {"mass-delay", "200ms"}, {"mass-floor", "true"},
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	var rates, scale, procs, skip, binEnv string
	fs := flag.NewFlagSet("rtbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.Jobs, "jobs", 20000, "N: stop jobs in each drain backlog")
	fs.IntVar(&c.Games, "games", 0, "K: games the jobs are spread over, job i stops game i mod K (default N: every job a real running→stopped transition)")
	fs.StringVar(&rates, "rates", "0.25,0.5,0.8", "offered rates for the latency runs, as fractions of each pipeline's own drain rate")
	fs.DurationVar(&c.RateDuration, "rate-duration", 2*time.Second, "how long each latency run offers jobs")
	fs.StringVar(&c.LatencyCSV, "latency-csv", "", "write each latency run's jobs (sent_s: seconds since rtbench started, the clock of GODEBUG=gctrace=1's @ times; latency_ms) to DIR/<pipeline>-<percent>.csv")
	fs.DurationVar(&c.RateWarmup, "rate-warmup", 500*time.Millisecond, "before each latency run, how long the same rate is offered unmeasured (on other games, every result awaited), so the run measures a pipeline already serving (0: none)")
	fs.IntVar(&c.Workers, "workers", service.DefaultWorkers, "--workers of rtmanager (in process and binary) outside the workers scaling; the default is rtmanager's")
	fs.StringVar(&scale, "worker-scaling", "1,4,16,64", "--workers values of the in-process scaling drains")
	fs.StringVar(&procs, "procs", "1,2,3", "rtmanager binary process counts in one consumer group (drain)")
	fs.IntVar(&c.Batch, "batch", 128, "XREADGROUP COUNT of the Redis ceiling")
	fs.DurationVar(&c.Timeout, "timeout", 60*time.Second, "bound of each run; a run that does not finish in it fails")
	fs.StringVar(&skip, "skip", "", "comma-separated parts to skip: inproc, binary, old, ceiling, ceiling-process (the ceiling's loop in a child process, with --binary-env), floor (N stop jobs through the generated controllers alone, in-memory, no Redis: the floor under any consumer that keeps them), scaling, procs, latency, cluster, mass (cluster: the in-process drain on this redis-server and on a local Redis Cluster of 3 masters with S = 1 and S = 16, docs/scaling.md)")
	fs.StringVar(&c.CPUProfile, "cpuprofile", "", "write a CPU profile of this process (the in-process rtmanager runs in it) to this file")
	fs.StringVar(&c.MemProfile, "memprofile", "", "write an allocation profile of this process to this file at the end")
	fs.StringVar(&c.Trace, "trace", "", "write a Go execution trace of this process over the in-process pipeline's first latency run to this file (read with go tool trace -pprof=sched or -pprof=sync)")
	fs.StringVar(&c.BinDir, "bin-dir", "", "where to build the rtmanager binary (default a temporary directory)")
	fs.DurationVar(&c.StallProbe, "stall-probe", 5*time.Second, "before the runs, how long one thread spins on the clock to count the machine's own stalls (0: skip)")
	fs.IntVar(&c.Warmup, "warmup", 5000, "jobs of an unmeasured drain before each pipeline's measured one (0: none)")
	fs.StringVar(&binEnv, "binary-env", "", "comma-separated KEY=VALUE pairs added to the environment of the rtmanager processes (for instance GOMAXPROCS=1,GOGC=200); the in-process pipeline is not affected")
	fs.BoolVar(&c.CommandStats, "commandstats", false, "after each drain, print to stderr what each Redis command cost per job (INFO commandstats)")
	fs.StringVar(&c.MassEngine, "mass-engine", engineAuto, "mass stop: the engines, real local processes that exit --mass-delay after SIGTERM: c (forked copies of a small static C program, cmd/rtbench/engine/engine.c, built with $CC or cc), bash (forked bash subshells, which cost the machine several times the CPU at each SIGTERM and exit) or auto (c when a C compiler works, else bash)")
	fs.IntVar(&c.MassN, "mass-n", 2000, "mass stop: games whose engines (real local processes, --mass-engine) are all stopped at once by the rtmanager binary with default flags and --runtime process. "+
		"Each engine is one process (a bash one about 110 kB of its own memory, a C one less) plus the kernel's share; --mass-n 10000 needs about 2 GB free, ulimit -u and /proc/sys/kernel/pid_max above N plus what else runs, and takes a while to start (engines cost a few ms of CPU each)")
	fs.DurationVar(&c.MassDelay, "mass-delay", time.Second, "mass stop: how long each engine takes to exit after SIGTERM (below rtmanager's --stop-grace, 10s, or it is killed)")
	fs.DurationVar(&c.MassSettle, "mass-settle", 0, "mass stop: how long to wait after rtmanager is ready before writing the jobs, so its start-up work (the runtime watch's first reconciliation sets up an exit wait per engine) is done before the burst, as on a long-running service (0: write them at once)")
	fs.BoolVar(&c.MassFloor, "mass-floor", false, "mass stop: also measure the machine's own floor: N fresh engines sent SIGTERM straight from rtbench, no rtmanager or Redis, time until all have exited (starts the engines a second time)")
	fs.BoolVar(&c.Smoke, "smoke", false, "a few seconds' run of every pipeline with tiny sizes (--jobs 300, one 300ms latency run at 50%, --mass-n 50 --mass-delay 200ms, …); flags given explicitly still apply")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.Smoke {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		for _, kv := range smokeFlags {
			if !set[kv[0]] {
				if err := fs.Set(kv[0], kv[1]); err != nil {
					return c, fmt.Errorf("--smoke: %s: %w", kv[0], err)
				}
			}
		}
	}
	switch c.MassEngine {
	case engineAuto, engineKindC, engineKindBash:
	default:
		return c, fmt.Errorf("--mass-engine %q: want auto, c or bash", c.MassEngine)
	}
	if c.MassN < 1 || c.MassDelay < 0 {
		return c, errors.New("--mass-n: want 1 or more; --mass-delay: want 0 or more")
	}
	if c.Jobs < 2 {
		return c, errors.New("--jobs: want 2 or more")
	}
	if c.Games <= 0 {
		c.Games = c.Jobs
	}
	var err error
	if c.Rates, err = floats(rates); err != nil {
		return c, fmt.Errorf("--rates: %w", err)
	}
	if c.WorkerScale, err = ints(scale); err != nil {
		return c, fmt.Errorf("--worker-scaling: %w", err)
	}
	if c.Procs, err = ints(procs); err != nil {
		return c, fmt.Errorf("--procs: %w", err)
	}
	c.Skip = map[string]bool{}
	for _, s := range strings.Split(skip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			if !slices.Contains(skipParts, s) {
				return c, fmt.Errorf("--skip %q: want some of %s", s, strings.Join(skipParts, ", "))
			}
			c.Skip[s] = true
		}
	}
	if c.Trace != "" && (c.Skip["inproc"] || c.Skip["latency"]) {
		return c, errors.New("--trace: traces the in-process pipeline's first latency run; --skip inproc or latency leaves none")
	}
	if c.Warmup < 0 {
		return c, errors.New("--warmup: want 0 or more")
	}
	if c.RateWarmup < 0 {
		return c, errors.New("--rate-warmup: want 0 or more")
	}
	for _, kv := range strings.Split(binEnv, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			return c, fmt.Errorf("--binary-env: want KEY=VALUE, got %q", kv)
		}
		c.BinaryEnv = append(c.BinaryEnv, kv)
	}
	if c.Workers < 1 || c.Batch < 1 {
		return c, errors.New("--workers and --batch: want 1 or more")
	}
	return c, nil
}

// startTrace starts this process's execution trace into file; the returned
// func stops it.
func startTrace(file string) (func(), error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("--trace: %w", err)
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--trace: %w", err)
	}
	return func() { trace.Stop(); f.Close() }, nil
}

// envNote names the extra environment of the rtmanager processes in a
// pipeline's name, so a table read later says how they ran.
func envNote(env []string) string {
	if len(env) == 0 {
		return ""
	}
	return ", " + strings.Join(env, " ")
}

func floats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 || v > 1.5 {
			return nil, fmt.Errorf("bad fraction %q", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v < 1 || v > 1024 {
			return nil, fmt.Errorf("bad count %q", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func main() {
	if os.Getenv(ceilingChildAddrEnv) != "" {
		os.Exit(ceilingChild(os.Getenv, os.Stdin, os.Stderr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	redis.SetLogger(quietRedis{})
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtbench:", err)
		os.Exit(2)
	}
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "rtbench:", err)
		os.Exit(1)
	}
}

// quietRedis drops go-redis's own log lines.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	began := time.Now()
	srv, err := testredis.New(testredis.Options{})
	if err != nil {
		return err
	}
	defer srv.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 64})
	defer rdb.Close()

	rep := &report{Config: reportConfig{
		Jobs: cfg.Jobs, Games: cfg.Games, Rates: cfg.Rates, RateDurationS: cfg.RateDuration.Seconds(),
		Workers: cfg.Workers, Batch: cfg.Batch, BinaryEnv: cfg.BinaryEnv, Smoke: cfg.Smoke,
	}}
	rep.Machine = machine(ctx, rdb)
	progress := func(format string, a ...any) { fmt.Fprintf(stderr, "rtbench: "+format+"\n", a...) }
	progress("redis-server %s at %s; N=%d K=%d; %d CPUs", rep.Machine.Redis, srv.Addr(), cfg.Jobs, cfg.Games, rep.Machine.NumCPU)

	e := &env{cfg: cfg, srv: srv, rdb: rdb, progress: progress}
	if cfg.StallProbe > 0 {
		progress("probing the machine's stalls for %s", cfg.StallProbe)
		rep.Machine.Stalls = probeStalls(cfg.StallProbe)
	}

	if cfg.CPUProfile != "" {
		f, err := os.Create(cfg.CPUProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	if cfg.MemProfile != "" {
		defer func() {
			if f, err := os.Create(cfg.MemProfile); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}()
	}

	var bin string
	if !cfg.Skip["binary"] || !cfg.Skip["mass"] {
		dir := cfg.BinDir
		if dir == "" {
			d, err := os.MkdirTemp("", "rtbench-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(d)
			dir = d
		}
		bin = filepath.Join(dir, "rtmanager")
		progress("building %s", bin)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/rtmanager")
		cmd.Dir = cfg.ModuleDir
		cmd.Stdout, cmd.Stderr = stderr, stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/rtmanager (run rtbench from the module root): %w", err)
		}
	}

	type entry struct {
		key  string
		name string
		p    pipeline
	}
	var pipes []entry
	if !cfg.Skip["inproc"] {
		pipes = append(pipes, entry{"rtmanager_inproc", fmt.Sprintf("rtmanager in process (--workers %d)", cfg.Workers), inproc(cfg.Workers)})
	}
	if !cfg.Skip["binary"] {
		pipes = append(pipes, entry{"rtmanager_binary", fmt.Sprintf("rtmanager binary, 1 process (--workers %d%s)", cfg.Workers, envNote(cfg.BinaryEnv)), binary(bin, 1, cfg.Workers)})
	}
	if !cfg.Skip["old"] {
		pipes = append(pipes, entry{"old_design", "old design (XREAD COUNT 1 + offset SET)", oldDesign()})
	}
	if !cfg.Skip["ceiling"] {
		pipes = append(pipes, entry{"redis_ceiling", fmt.Sprintf("Redis ceiling (XREADGROUP COUNT %d, pipelined, MULTI)", cfg.Batch), ceiling(cfg.Batch)})
	}
	if !cfg.Skip["ceiling-process"] {
		pipes = append(pipes, entry{"redis_ceiling_process", fmt.Sprintf("Redis ceiling in a process of its own%s", envNote(cfg.BinaryEnv)), ceilingProcess(cfg.Batch)})
	}

	for _, pe := range pipes {
		if err := ctx.Err(); err != nil {
			return err
		}
		pr := pipelineReport{Name: pe.name}
		if cfg.Warmup > 0 {
			// Unmeasured: the first run after a start pays for growing this
			// process's heap and redis-server's allocations, and the
			// pipelines run one after the other.
			if _, err := e.drain(ctx, pe.p, min(cfg.Warmup, cfg.Jobs)); err != nil {
				return fmt.Errorf("%s: warm-up drain: %w", pe.name, err)
			}
		}
		d, err := e.drain(ctx, pe.p, cfg.Jobs)
		if err != nil {
			return fmt.Errorf("%s: drain: %w", pe.name, err)
		}
		pr.Drain = d
		gcs := ""
		if len(d.GCs) > 0 {
			gcs = fmt.Sprintf(", %s garbage collections in rtmanager", joinInts(d.GCs))
		}
		progress("%s: drain %.0f jobs/s, client CPU %.1f µs/job, %.1f context switches/job, %.0f allocs/job and %d garbage collections in rtbench%s", pe.name, d.JobsPerS, d.ClientCPUus, d.SwitchesPerJob, d.AllocsPerJob, d.OwnGCs, gcs)
		if !cfg.Skip["latency"] {
			for _, f := range cfg.Rates {
				rate := f * d.JobsPerS
				stopTrace := func() {}
				if cfg.Trace != "" && pe.key == "rtmanager_inproc" && len(pr.Latency) == 0 {
					if stopTrace, err = startTrace(cfg.Trace); err != nil {
						return err
					}
				}
				l, err := e.latency(ctx, pe.p, rate, cfg.RateDuration)
				stopTrace()
				if err != nil {
					return fmt.Errorf("%s: latency at %.0f jobs/s: %w", pe.name, rate, err)
				}
				l.Fraction = f
				if g := l.GC; g != nil {
					progress("%s: %.0f%%: this process collected garbage %d times; a collection ended in flight of %.0f%% of all jobs and of %.0f%% of those at or over the p99", pe.name, f*100, g.Cycles, g.AllHit*100, g.TailHit*100)
				}
				if cfg.LatencyCSV != "" {
					path, err := writeLatencyCSV(cfg.LatencyCSV, pe.key, f, l.samples)
					if err != nil {
						return err
					}
					progress("%s: %.0f%%: %d jobs written to %s", pe.name, f*100, len(l.samples), path)
				}
				pr.Latency = append(pr.Latency, l)
				progress("%s: %.0f%% (%.0f jobs/s): p50 %.2fms p99 %.2fms p99.9 %.2fms (warm-up p99 %.2fms), client CPU %.1f µs/job, Redis CPU %.1f µs/job", pe.name, f*100, l.OfferedPerS, l.P50ms, l.P99ms, l.P999ms, l.WarmupP99ms, l.ClientCPUus, l.RedisCPUus)
			}
		}
		rep.set(pe.key, pr)
	}

	if !cfg.Skip["floor"] {
		f, err := generatedFloor(ctx, cfg)
		if err != nil {
			return err
		}
		rep.GeneratedFloor = f
		progress("generated controllers alone: client CPU %.1f µs/job, %.0f allocs/job", f.ClientCPUus, f.AllocsPerJob)
	}
	if !cfg.Skip["scaling"] && !cfg.Skip["inproc"] {
		for _, w := range cfg.WorkerScale {
			d, err := e.drain(ctx, inproc(w), cfg.Jobs)
			if err != nil {
				return fmt.Errorf("workers %d: %w", w, err)
			}
			rep.WorkerScaling = append(rep.WorkerScaling, workerPoint{Workers: w, JobsPerS: d.JobsPerS})
			progress("in process --workers %d: drain %.0f jobs/s", w, d.JobsPerS)
		}
	}
	if !cfg.Skip["binary"] && !cfg.Skip["procs"] {
		for _, n := range cfg.Procs {
			d, err := e.drain(ctx, binary(bin, n, cfg.Workers), cfg.Jobs)
			if err != nil {
				return fmt.Errorf("%d processes: %w", n, err)
			}
			rep.Processes = append(rep.Processes, procPoint{Processes: n, JobsPerS: d.JobsPerS, Spread: d.Spread, PeakRSSMiB: d.PeakRSSMiB})
			progress("%d rtmanager processes: drain %.0f jobs/s, spread %v", n, d.JobsPerS, d.Spread)
		}
	}
	if !cfg.Skip["cluster"] {
		c, err := e.runCluster(ctx)
		if err != nil {
			return fmt.Errorf("cluster comparison: %w", err)
		}
		rep.Cluster = c
	}
	if !cfg.Skip["mass"] {
		m, err := e.massStop(ctx, bin)
		if err != nil {
			return fmt.Errorf("mass stop: %w", err)
		}
		rep.Mass = &m
		progress("mass stop: %d games × %s: all results %.2fs after the first job (one stop per worker: %.1fs), fast game %d ms, rtmanager peak RSS %.1f MiB",
			m.Games, cfg.MassDelay, m.AllResultsS, m.PerWorkerS, m.FastMS, m.PeakRSSMiB)
	}
	rep.derive()
	rep.DurationS = time.Since(began).Seconds()
	rep.print(stdout)
	b, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(b))
	return nil
}

// machine describes where the run happened.
// probeStalls spins one locked thread on the clock for d and counts the gaps
// over a millisecond: time the thread did not run although it always could
// (host preemption, interrupts). Latency figures on the same machine cannot
// be better than what these allow.
func probeStalls(d time.Duration) *stallInfo {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	st := &stallInfo{Seconds: d.Seconds()}
	last := time.Now()
	for end := last.Add(d); last.Before(end); {
		now := time.Now()
		if gap := now.Sub(last); gap > time.Millisecond {
			st.Over1ms++
			if gap > 3*time.Millisecond {
				st.Over3ms++
			}
			st.LongestMs = max(st.LongestMs, float64(gap.Microseconds())/1000)
		}
		last = now
	}
	return st
}

func machine(ctx context.Context, rdb *redis.Client) machineInfo {
	m := machineInfo{NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if info, err := rdb.Info(ctx, "server").Result(); err == nil {
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "redis_version:"); ok {
				m.Redis = v
			}
		}
	}
	return m
}
