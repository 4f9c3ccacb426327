package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

const (
	jobsStream    = runtimejobs.StopJobsChannelPath
	resultsStream = runtimejobs.JobResultsChannelPath
	groupName     = "rtmanager"
)

type env struct {
	cfg      config
	srv      *testredis.Server
	rdb      *redis.Client
	progress func(string, ...any)
}

// instance is a started pipeline.
type instance struct {
	// ready returns once the pipeline consumes (nil: at once).
	ready func(ctx context.Context) error
	// stop ends it and tells what it measured of itself.
	stop func() stopInfo
	// inProcess: it runs in this process, so this process's garbage
	// collections are its own (gcshare.go).
	inProcess bool
	// pids are the pipeline's own processes, if any: their CPU over a
	// latency run is read from /proc while they run (getrusage counts a
	// child only once it has ended).
	pids []int
}

// liveCPU is the CPU time (user+sys, seconds) of this process and of pids
// while they run: the consumer's side of a latency run, which ends before
// its processes do.
func liveCPU(pids []int) float64 {
	var ru syscall.Rusage
	var total float64
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		total = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	for _, pid := range pids {
		total += procCPUSeconds(pid)
	}
	return total
}

type stopInfo struct {
	acks []int64   // per process (binary)
	rss  []float64 // peak RSS per process, MiB (binary)
	gcs  []int64   // garbage collections per process over its life (binary)
	err  error
}

// pipeline starts a consumer of runtime:stop_jobs against e.
type pipeline func(ctx context.Context, e *env) (*instance, error)

func gameID(i int) string { return "g-" + strconv.Itoa(i) }

// warmGameID names the games of a latency run's warm-up, apart from the
// measured run's.
func warmGameID(i int) string { return "w-" + strconv.Itoa(i) }

// reset flushes the server and registers the K records as running.
func (e *env) reset(ctx context.Context) error {
	if err := e.rdb.FlushAll(ctx).Err(); err != nil {
		return err
	}
	return e.register(ctx, e.cfg.Games, gameID)
}

// register records n games, game j named idOf(j), as running.
func (e *env) register(ctx context.Context, n int, idOf func(int) string) error {
	st := runtimestore.New(e.rdb, runtimestore.Options{})
	now := time.Now().UnixMilli()
	const chunk = 2000
	for i := 0; i < n; i += chunk {
		p := e.rdb.Pipeline()
		for j := i; j < min(n, i+chunk); j++ {
			p.HSet(ctx, st.RecordKey(idOf(j)), "status", "running", "container_id", "none-"+strconv.Itoa(j),
				"engine_endpoint", "127.0.0.1:7000", "runtime", "none", "updated_at_ms", now)
		}
		if _, err := p.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

func jobValues(i int) []any { return jobValuesFor(gameID(i)) }

// fill writes the backlog of n jobs, pipelined.
func (e *env) fill(ctx context.Context, n int) error {
	const chunk = 2000
	for i := 0; i < n; i += chunk {
		p := e.rdb.Pipeline()
		for j := i; j < min(n, i+chunk); j++ {
			p.XAdd(ctx, &redis.XAddArgs{Stream: jobsStream, Values: jobValues(j % e.cfg.Games)})
		}
		if _, err := p.Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

func idMS(id string) int64 {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return n
}

// drainPoll is how often a drain asks Redis whether every result is in.
// The drain's time comes from the entries' ids, so this only lets the CPU
// window run on idle up to one interval; polling every 2 ms woke rtbench's
// otherwise idle process 500 times a second during a binary's drain: 437 ms
// of rtbench's own CPU over a drain of 80,000 jobs (5.5 µs per job), and
// context switches on the binary's two cores (an in-process pipeline's
// busy process absorbs the polls).
const drainPoll = 20 * time.Millisecond

// drain measures how fast p answers a backlog of n jobs.
func (e *env) drain(ctx context.Context, p pipeline, n int) (drainResult, error) {
	if err := e.reset(ctx); err != nil {
		return drainResult{}, err
	}
	if err := e.fill(ctx, n); err != nil {
		return drainResult{}, err
	}
	if e.cfg.CommandStats {
		if err := e.rdb.ConfigResetStat(ctx).Err(); err != nil {
			return drainResult{}, err
		}
	}
	cpu0, own0, sw0 := redisCPU(ctx, e.rdb), ownCPU(), ownSwitches()
	var mem0 runtime.MemStats
	runtime.ReadMemStats(&mem0)
	inst, err := p(ctx, e)
	if err != nil {
		return drainResult{}, err
	}
	if inst.ready != nil {
		// Every process up before the run ends, so each can be asked what
		// it did (with a small backlog one process may drain it all before
		// another listens). The drain's time is taken from the results.
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := inst.ready(rctx)
		cancel()
		if err != nil {
			inst.stop()
			return drainResult{}, fmt.Errorf("pipeline not ready: %w", err)
		}
	}
	deadline := time.Now().Add(e.cfg.Timeout)
	var got int64
	for {
		got, err = e.rdb.XLen(ctx, resultsStream).Result()
		if err != nil || got >= int64(n) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(drainPoll)
	}
	redisSec := redisCPU(ctx, e.rdb) - cpu0
	if e.cfg.CommandStats {
		e.printCommandStats(ctx, n, redisSec)
	}
	info := inst.stop()
	ownSec, switches := ownCPU()-own0, ownSwitches()-sw0
	var mem1 runtime.MemStats
	runtime.ReadMemStats(&mem1)
	if err != nil {
		return drainResult{}, err
	}
	if info.err != nil {
		return drainResult{}, info.err
	}
	if got < int64(n) {
		return drainResult{}, fmt.Errorf("only %d of %d results within %s", got, n, e.cfg.Timeout)
	}
	// Wait for stragglers of a stopped consumer, then check exactly one result per job.
	got, err = e.rdb.XLen(ctx, resultsStream).Result()
	if err != nil {
		return drainResult{}, err
	}
	if got != int64(n) {
		return drainResult{}, fmt.Errorf("%d results for %d jobs", got, n)
	}
	if err := e.checkStopped(ctx, n); err != nil {
		return drainResult{}, err
	}
	first, err := e.rdb.XRangeN(ctx, resultsStream, "-", "+", 1).Result()
	if err != nil || len(first) == 0 {
		return drainResult{}, fmt.Errorf("read first result: %v", err)
	}
	last, err := e.rdb.XRevRangeN(ctx, resultsStream, "+", "-", 1).Result()
	if err != nil || len(last) == 0 {
		return drainResult{}, fmt.Errorf("read last result: %v", err)
	}
	span := float64(idMS(last[0].ID)-idMS(first[0].ID)) / 1000
	if span <= 0 {
		span = 0.001
	}
	return drainResult{Jobs: n, Results: got, JobsPerS: float64(n-1) / span, RedisCPUus: redisSec * 1e6 / float64(n), ClientCPUus: ownSec * 1e6 / float64(n),
		SwitchesPerJob: float64(switches) / float64(n),
		AllocsPerJob:   float64(mem1.Mallocs-mem0.Mallocs) / float64(n), AllocBytesPerJob: float64(mem1.TotalAlloc-mem0.TotalAlloc) / float64(n),
		Spread: info.acks, PeakRSSMiB: info.rss, GCs: info.gcs, OwnGCs: int64(mem1.NumGC - mem0.NumGC)}, nil
}

// checkStopped fails unless every game a drain of n jobs stopped (each when
// n ≥ K) has its record `stopped`: the pipelines re-implemented here (old
// design, ceiling) must carry the real state machine, not only write one
// result per job.
func (e *env) checkStopped(ctx context.Context, n int) error {
	st := runtimestore.New(e.rdb, runtimestore.Options{})
	games := min(n, e.cfg.Games)
	const chunk = 2000
	bad, example := 0, ""
	for i := 0; i < games; i += chunk {
		p := e.rdb.Pipeline()
		cmds := make([]*redis.StringCmd, 0, chunk)
		for j := i; j < min(games, i+chunk); j++ {
			cmds = append(cmds, p.HGet(ctx, st.RecordKey(gameID(j)), "status"))
		}
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("read the records' status: %w", err)
		}
		for k, c := range cmds {
			if c.Val() != stopruntime.StatusStopped {
				if bad == 0 {
					example = fmt.Sprintf("%s is %q", gameID(i+k), c.Val())
				}
				bad++
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d of %d games not stopped after the drain (%s)", bad, games, example)
	}
	return nil
}

// latency offers rate jobs/s for dur to a running p and measures XADD of
// each job to the arrival of its result.
func (e *env) latency(ctx context.Context, p pipeline, rate float64, dur time.Duration) (latencyResult, error) {
	res := latencyResult{OfferedPerS: rate}
	if err := e.reset(ctx); err != nil {
		return res, err
	}
	warm := int(math.Round(rate * e.cfg.RateWarmup.Seconds()))
	if err := e.register(ctx, warm, warmGameID); err != nil {
		return res, err
	}
	inst, err := p(ctx, e)
	if err != nil {
		return res, err
	}
	stopped := false
	defer func() {
		if !stopped {
			inst.stop()
		}
	}()
	if inst.ready != nil {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := inst.ready(rctx)
		cancel()
		if err != nil {
			return res, fmt.Errorf("pipeline not ready: %w", err)
		}
	}
	total := int(math.Round(rate * dur.Seconds()))
	if total < 1 {
		total = 1
	}

	// The tail: arrival time of each result by job id.
	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	// Pointer-free, like sent: the garbage collector of this process (which
	// the in-process pipelines share) does not scan them (bookkeeping.go).
	arrived := make(map[entryID]time.Duration, total)
	resultIDs := make(map[entryID]entryID, total) // job entry id → its result's entry id
	var amu sync.Mutex
	tailDone := make(chan struct{})
	tail := redis.NewClient(&redis.Options{Addr: e.srv.Addr(), PoolSize: 2})
	defer tail.Close()
	go func() {
		defer close(tailDone)
		last := "0-0"
		for tctx.Err() == nil {
			streams, err := tail.XRead(tctx, &redis.XReadArgs{Streams: []string{resultsStream, last}, Count: 2000, Block: 50 * time.Millisecond}).Result()
			now := time.Since(processStart)
			if err != nil {
				if !errors.Is(err, redis.Nil) && tctx.Err() == nil {
					time.Sleep(time.Millisecond)
				}
				continue
			}
			amu.Lock()
			for _, s := range streams {
				for _, m := range s.Messages {
					last = m.ID
					j, ok1 := parseEntryID(m.Values["job_id"])
					r, ok2 := parseEntryID(m.ID)
					if ok1 && ok2 {
						arrived[j] = now
						resultIDs[j] = r
					}
				}
			}
			amu.Unlock()
		}
	}()

	prdb := redis.NewClient(&redis.Options{Addr: e.srv.Addr(), PoolSize: 2})
	defer prdb.Close()
	var wsent map[entryID]time.Duration
	if warm > 0 {
		// Unmeasured: the same load on other games first, every result
		// awaited, so the run measures a pipeline that has been serving
		// (heap grown, connections dialled, goroutines' stacks sized), as a
		// long-running service is, and as the drains are after --warmup.
		wsent, _, err = offer(ctx, prdb, rate, warm, warmGameID)
		if err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
		if err := waitArrived(ctx, &amu, arrived, len(wsent), e.cfg.Timeout); err != nil {
			return res, fmt.Errorf("warm-up: %w", err)
		}
	}
	amu.Lock()
	arrived0 := len(arrived)
	amu.Unlock()
	redis0, own0 := redisCPU(ctx, e.rdb), liveCPU(inst.pids)
	sent, sendSpan, err := offer(ctx, prdb, rate, total, func(k int) string { return gameID(k % e.cfg.Games) })
	if err != nil {
		return res, err
	}
	// Wait for every result (bounded); a missing one is counted below.
	_ = waitArrived(ctx, &amu, arrived, arrived0+len(sent), e.cfg.Timeout)
	res.ClientCPUus = (liveCPU(inst.pids) - own0) * 1e6 / float64(total)
	res.RedisCPUus = (redisCPU(ctx, e.rdb) - redis0) * 1e6 / float64(total)
	tcancel()
	<-tailDone
	info := inst.stop()
	stopped = true
	if info.err != nil {
		return res, info.err
	}
	res.PeakRSSMiB = info.rss

	if len(wsent) > 0 {
		wlat := make([]float64, 0, len(wsent))
		for id, t := range wsent {
			wlat = append(wlat, float64((arrived[id]-t).Microseconds())/1000)
		}
		sort.Float64s(wlat)
		res.WarmupJobs, res.WarmupP99ms = len(wlat), quantile(wlat, 0.99)
	}
	lat := make([]float64, 0, total)
	res.samples = make([]latSample, 0, total)
	for id, t := range sent {
		a, ok := arrived[id]
		if !ok {
			res.Missing++
			continue
		}
		ms := float64((a - t).Microseconds()) / 1000
		lat = append(lat, ms)
		res.samples = append(res.samples, latSample{sentS: t.Seconds(), ms: ms})
	}
	if ids := entryLatencies(sent, resultIDs); len(ids) > 0 {
		res.IDP50ms = quantile(ids, 0.50)
		res.IDP99ms = quantile(ids, 0.99)
		res.IDP999ms = quantile(ids, 0.999)
	}
	res.Jobs = total
	res.AchievedPerS = float64(total) / sendSpan.Seconds()
	sort.Float64s(lat)
	if len(lat) > 0 {
		res.P50ms = quantile(lat, 0.50)
		res.P99ms = quantile(lat, 0.99)
		res.P999ms = quantile(lat, 0.999)
		res.Maxms = lat[len(lat)-1]
	}
	if inst.inProcess {
		res.GC = gcShares(res.samples, res.P99ms, gcEnds())
	}
	if e.cfg.LatencyCSV == "" {
		res.samples = nil
	}
	return res, nil
}

// offer writes total jobs at rate jobs/s, job k for game gameOf(k), and
// tells when each was sent (by entry id, since processStart) and how long
// sending took. Job k
// is due at start + k/rate. Every millisecond, the jobs that have come due
// go out in one pipeline, so offering tens of thousands of jobs a second
// costs this process (which shares the two cores with Redis and, in
// process, with rtmanager) a thousand round trips a second, not one per
// job. A job's send time is taken just before its pipeline is written.
func offer(ctx context.Context, rdb *redis.Client, rate float64, total int, gameOf func(k int) string) (map[entryID]time.Duration, time.Duration, error) {
	sent := make(map[entryID]time.Duration, total)
	start := time.Now().Add(5 * time.Millisecond)
	ids := make([]*redis.StringCmd, 0, 256)
	for k := 0; k < total; {
		due := min(total, int(time.Since(start).Seconds()*rate)+1)
		if due <= k {
			time.Sleep(time.Until(start.Add(time.Duration(float64(k) / rate * float64(time.Second)))))
			continue
		}
		ids = ids[:0]
		p := rdb.Pipeline()
		for ; k < due; k++ {
			ids = append(ids, p.XAdd(ctx, &redis.XAddArgs{Stream: jobsStream,
				Values: jobValuesFor(gameOf(k))}))
		}
		t := time.Now()
		if _, err := p.Exec(ctx); err != nil {
			return nil, 0, err
		}
		at := t.Sub(processStart)
		for _, c := range ids {
			id, ok := parseEntryID(c.Val())
			if !ok {
				return nil, 0, fmt.Errorf("XADD replied %q, not an entry id", c.Val())
			}
			sent[id] = at
		}
		if rest := time.Until(t.Add(time.Millisecond)); rest > 0 {
			time.Sleep(rest)
		}
	}
	return sent, time.Since(start), nil
}

// waitArrived returns once arrived (results by job id, each job's once)
// holds want results, or fails after timeout.
func waitArrived(ctx context.Context, mu *sync.Mutex, arrived map[entryID]time.Duration, want int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		mu.Lock()
		n := len(arrived)
		mu.Unlock()
		if n >= want {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%d of %d results within %s", n, want, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// entryLatencies are the latencies by the server's clock, sorted: for each
// job with a result, the millisecond part of its result's entry id less that
// of its own. Both ids are the times Redis appended the entries, so rtbench's
// own scheduling is out of them; each is whole milliseconds, so one
// difference is within 1 ms of the true latency.
func entryLatencies(sent map[entryID]time.Duration, resultIDs map[entryID]entryID) []float64 {
	lat := make([]float64, 0, len(resultIDs))
	for id := range sent {
		if r, ok := resultIDs[id]; ok {
			lat = append(lat, float64(int64(r.MS)-int64(id.MS)))
		}
	}
	sort.Float64s(lat)
	return lat
}

// quantile of sorted v, nearest rank.
func quantile(v []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(v)))) - 1
	return v[max(0, min(i, len(v)-1))]
}

// ownCPU is the CPU time (user+sys, seconds) of this process and of its
// children that have ended: the in-process pipelines, or the rtmanager
// processes once stopped.
func ownCPU() float64 {
	var total float64
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		}
	}
	return total
}

// ownSwitches counts the context switches (voluntary and not) of this
// process's threads and of its children that have ended: each time a
// thread left a core, mostly to sleep until woken.
func ownSwitches() int64 {
	var total int64
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			total += ru.Nvcsw + ru.Nivcsw
		}
	}
	return total
}

// redisCPU is the CPU time (user+sys, seconds) the redis-server has used.
func redisCPU(ctx context.Context, rdb *redis.Client) float64 {
	info, err := rdb.Info(ctx, "cpu").Result()
	if err != nil {
		return 0
	}
	var total float64
	for _, line := range strings.Split(info, "\r\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return total
}

// printCommandStats tells, per job, how often each command ran and the
// server time it took (commands called by scripts are counted on their own
// and inside the script's time). What the total leaves over is the server's
// I/O and event loop.
func (e *env) printCommandStats(ctx context.Context, n int, redisSec float64) {
	info, err := e.rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		e.progress("commandstats: %v", err)
		return
	}
	e.progress("commandstats per job (redis CPU %.1f µs/job):", redisSec*1e6/float64(n))
	for _, line := range strings.Split(info, "\r\n") {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var calls, usec float64
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				calls, _ = strconv.ParseFloat(v, 64)
			case "usec":
				usec, _ = strconv.ParseFloat(v, 64)
			}
		}
		e.progress("  %-22s calls/job %7.3f  µs/job %6.2f", strings.TrimPrefix(name, "cmdstat_"), calls/float64(n), usec/float64(n))
	}
}
