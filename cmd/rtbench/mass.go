package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/service"
	"galaxy/rtmanager/internal/stopruntime"
)

// massResult is the mass-stop run: N games whose engines exit a delay after
// SIGTERM, all stopped at once through the built rtmanager with its default
// flags, and one fast game's job right behind them.
type massResult struct {
	Games int `json:"games"`
	// Engine is the kind of engine (--mass-engine): c or bash.
	Engine  string  `json:"engine"`
	DelayS  float64 `json:"delay_s"`
	Workers int     `json:"workers"` // rtmanager's default --workers
	// EnginesStartS is how long the N+1 engines took to start (not measured
	// against anything; it tells what the machine did before the run).
	EnginesStartS float64 `json:"engines_start_s"`
	// SettleS is how long rtmanager ran, ready, before the jobs were
	// written: about --mass-settle.
	SettleS float64 `json:"settle_s,omitempty"`
	// From the first job's entry id (server clock, ms): the last job's, the
	// first result's and the last of the N games' results.
	WrittenS     float64 `json:"written_s"`
	FirstResultS float64 `json:"first_result_s"`
	AllResultsS  float64 `json:"all_results_s"`
	// FloorS is the delay (no stop can be faster); PerWorkerS is
	// ceil(N/workers) × delay, what one stop per worker at a time takes.
	FloorS      float64 `json:"floor_s"`
	PerWorkerS  float64 `json:"one_stop_per_worker_s"`
	VsFloor     float64 `json:"all_results_vs_floor"`
	VsPerWorker float64 `json:"all_results_vs_one_stop_per_worker"`
	// MeasuredFloorS (--mass-floor) is how long N fresh engines sent SIGTERM
	// straight from rtbench take to exit: the machine's own floor.
	MeasuredFloorS float64 `json:"measured_floor_s,omitempty"`
	VsMeasured     float64 `json:"all_results_vs_measured_floor,omitempty"`
	// FastMS is the fast game's result id less its job id, ms.
	FastMS int64 `json:"fast_game_ms"`
	// BegunS is when the last begin step ran (from the first job's entry
	// id); FastBeginMS when the fast game's did, less its job id
	// (massbegin.go).
	BegunS      float64 `json:"all_begun_s"`
	FastBeginMS int64   `json:"fast_game_begin_ms"`
	PeakRSSMiB  float64 `json:"rtmanager_peak_rss_mib"`
	CPUS        float64 `json:"rtmanager_cpu_s"`
	Results     int     `json:"results"`
	// ExactlyOnce: every job (N+1) has exactly one result, each a success.
	ExactlyOnce bool `json:"exactly_one_result_per_job"`
}

func massGameID(i int) string { return "mass-" + strconv.Itoa(i) }

const fastGameID = "mass-fast"

// massStop runs the mass-stop measurement against the rtmanager binary bin.
func (e *env) massStop(ctx context.Context, bin string) (_ massResult, err error) {
	n, delay := e.cfg.MassN, e.cfg.MassDelay
	res := massResult{Games: n, DelayS: delay.Seconds(), Workers: service.DefaultWorkers, FloorS: delay.Seconds()}
	res.PerWorkerS = math.Ceil(float64(n)/float64(res.Workers)) * delay.Seconds()
	if err := e.rdb.FlushAll(ctx).Err(); err != nil {
		return res, err
	}

	began := time.Now()
	// Bounded: a fork costs about 2 ms of CPU on the 2-core VMs, several
	// times that when they are loaded.
	sctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout+time.Duration(n)*30*time.Millisecond)
	defer cancel()
	kind, cleanup, err := massEngines(e.cfg.MassEngine, e.progress)
	defer cleanup()
	if err != nil {
		return res, err
	}
	res.Engine = kind.kind
	slow, err := startEngines(sctx, kind, n, delay)
	if err != nil {
		return res, fmt.Errorf("start %d engines: %w", n, err)
	}
	defer slow.close()
	fast, err := startEngines(sctx, kind, 1, 0)
	if err != nil {
		return res, err
	}
	defer fast.close()
	res.EnginesStartS = time.Since(began).Seconds()
	e.progress("mass stop: %d %s engines (exit %s after SIGTERM) and 1 fast one started in %.1fs", n, kind.kind, delay, res.EnginesStartS)

	games := make(map[string]int, n+1) // game id → pid
	for i, pid := range slow.pids {
		games[massGameID(i)] = pid
	}
	games[fastGameID] = fast.pids[0]
	if err := e.registerEngines(ctx, games); err != nil {
		return res, err
	}

	rt, err := startRTManager(ctx, bin, e.srv.URL(), e.cfg.BinaryEnv)
	if err != nil {
		return res, err
	}
	defer func() {
		if stopErr := rt.stop(); err == nil {
			err = stopErr
		}
		if err == nil {
			_ = os.Remove(rt.logPath)
		}
	}()

	ready := time.Now()
	if d := e.cfg.MassSettle; d > 0 {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(d):
		}
	}
	res.SettleS = time.Since(ready).Seconds()
	// All N jobs and then the fast game's in one pipeline: written at once.
	p := e.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, 0, n+1)
	for i := 0; i < n; i++ {
		cmds = append(cmds, p.XAdd(ctx, &redis.XAddArgs{Stream: jobsStream, Values: jobValuesFor(massGameID(i))}))
	}
	cmds = append(cmds, p.XAdd(ctx, &redis.XAddArgs{Stream: jobsStream, Values: jobValuesFor(fastGameID)}))
	if _, err := p.Exec(ctx); err != nil {
		return res, fmt.Errorf("write the mass stop jobs: %w", err)
	}
	jobIDs := make([]string, len(cmds))
	for i, c := range cmds {
		jobIDs[i] = c.Val()
	}

	bound := e.cfg.Timeout + 2*time.Duration(res.PerWorkerS*float64(time.Second))
	deadline := time.Now().Add(bound)
	var got int64
	for {
		got, err = e.rdb.XLen(ctx, resultsStream).Result()
		if err != nil || got >= int64(n+1) || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		select {
		case err := <-rt.done:
			rt.done <- err
			return res, fmt.Errorf("rtmanager exited during the mass stop: %v (log %s)", err, rt.logPath)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return res, err
	}
	res.PeakRSSMiB = peakRSSMiB(rt.cmd.Process.Pid)
	res.CPUS = procCPUSeconds(rt.cmd.Process.Pid)
	if got < int64(n+1) {
		return res, fmt.Errorf("mass stop: %d of %d results within %s (log %s)", got, n+1, bound, rt.logPath)
	}
	if err := rt.stop(); err != nil {
		return res, err
	}

	msgs, err := e.rdb.XRange(ctx, resultsStream, "-", "+").Result()
	if err != nil {
		return res, fmt.Errorf("read the results: %w", err)
	}
	res.Results = len(msgs)
	if err := massTimes(&res, jobIDs, msgs); err != nil {
		return res, fmt.Errorf("mass stop: %w (log %s)", err, rt.logPath)
	}
	res.ExactlyOnce = true
	ops, err := e.rdb.XRange(ctx, runtimestore.New(e.rdb, runtimestore.Options{}).OperationsKey(), "-", "+").Result()
	if err != nil {
		return res, fmt.Errorf("read the operation log: %w", err)
	}
	if err := massBegins(&res, jobIDs, ops); err != nil {
		return res, fmt.Errorf("mass stop: %w", err)
	}
	// Every engine stopped with a success result is gone; the spawners end
	// once they have reaped them.
	if err := slow.wait(10 * time.Second); err != nil {
		return res, fmt.Errorf("mass stop: %w after every result was a success", err)
	}
	if e.cfg.MassFloor {
		slow.close()
		fast.close()
		fctx, cancel := context.WithTimeout(ctx, e.cfg.Timeout+time.Duration(n)*30*time.Millisecond)
		defer cancel()
		floor, err := massFloor(fctx, kind, n, delay, bound)
		if err != nil {
			return res, fmt.Errorf("mass stop floor: %w", err)
		}
		res.MeasuredFloorS = floor.Seconds()
		res.VsMeasured = res.AllResultsS / res.MeasuredFloorS
	}
	return res, nil
}

// massTimes checks exactly one success result per job (jobIDs: the N slow
// games' then the fast one's) and fills the times from the entry ids.
func massTimes(res *massResult, jobIDs []string, msgs []redis.XMessage) error {
	want := make(map[string]int, len(jobIDs))
	for _, id := range jobIDs {
		want[id] = 0
	}
	resultOf := make(map[string]string, len(jobIDs))
	var problems []string
	for _, m := range msgs {
		job, _ := m.Values["job_id"].(string)
		count, ok := want[job]
		if !ok {
			problems = append(problems, fmt.Sprintf("result %s for unknown job %q", m.ID, job))
			continue
		}
		want[job] = count + 1
		resultOf[job] = m.ID
		if o, _ := m.Values["outcome"].(string); o != string(stopruntime.OutcomeSuccess) {
			problems = append(problems, fmt.Sprintf("job %s: outcome %q %v %v", job, o, m.Values["error_code"], m.Values["error_message"]))
		}
	}
	for _, id := range jobIDs {
		if want[id] != 1 {
			problems = append(problems, fmt.Sprintf("job %s: %d results", id, want[id]))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		more := ""
		if len(problems) > 5 {
			more = fmt.Sprintf(" … (%d in all)", len(problems))
			problems = problems[:5]
		}
		return fmt.Errorf("not exactly one success result per job: %s%s", strings.Join(problems, "; "), more)
	}
	t0 := idMS(jobIDs[0])
	slow := jobIDs[:len(jobIDs)-1]
	fastJob := jobIDs[len(jobIDs)-1]
	var first, last int64 = math.MaxInt64, 0
	for _, id := range slow {
		r := idMS(resultOf[id])
		first, last = min(first, r), max(last, r)
	}
	first = min(first, idMS(resultOf[fastJob]))
	res.WrittenS = float64(idMS(fastJob)-t0) / 1000
	res.FirstResultS = float64(first-t0) / 1000
	res.AllResultsS = float64(last-t0) / 1000
	res.FastMS = idMS(resultOf[fastJob]) - idMS(fastJob)
	if res.FloorS > 0 {
		res.VsFloor = res.AllResultsS / res.FloorS
	}
	if res.PerWorkerS > 0 {
		res.VsPerWorker = res.AllResultsS / res.PerWorkerS
	}
	return nil
}

func jobValuesFor(game string) []any {
	return []any{"game_id", game, "reason", "game_finished", "requested_at_ms", time.Now().UnixMilli()}
}

// registerEngines registers each game as running with runtime process, as
// cmd/rtdemo does: the container id is the process driver's pid+start id.
func (e *env) registerEngines(ctx context.Context, games map[string]int) error {
	svc, err := newStopService(e.rdb, nil)
	if err != nil {
		return err
	}
	type game struct {
		id  string
		pid int
	}
	work := make(chan game)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range cap(errs) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := range work {
				cid, err := process.IDForPID(g.pid)
				if err == nil {
					_, err = svc.Register(ctx, stopruntime.Record{GameID: g.id, Runtime: stopruntime.RuntimeProcess, ContainerID: cid, EngineEndpoint: "127.0.0.1:7000"})
				}
				if err != nil {
					errs <- fmt.Errorf("register engine of %s: %w", g.id, err)
					for range work { // drain
					}
					return
				}
			}
		}()
	}
	for id, pid := range games {
		work <- game{id, pid}
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
