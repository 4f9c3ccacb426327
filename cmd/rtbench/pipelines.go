package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/metrics"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/runtimes/none"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/service"
	"galaxy/rtmanager/internal/stopruntime"
)

// waitGroupExists returns once the consumer group of the job stream exists.
func waitGroupExists(rdb *redis.Client, group string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		for {
			gs, err := rdb.XInfoGroups(ctx, jobsStream).Result()
			if err == nil {
				for _, g := range gs {
					if g.Name == group {
						return nil
					}
				}
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
}

// newStopService is cmd/rtmanager's stop service for --runtime none.
func newStopService(rdb redis.UniversalClient, log *slog.Logger) (*stopruntime.Service, error) {
	return stopruntime.New(runtimestore.New(rdb, runtimestore.Options{}),
		map[string]stopruntime.Driver{stopruntime.RuntimeNone: none.Driver{}},
		stopruntime.Options{StopGrace: stopruntime.DefaultStopGrace, Logger: log, TakeoverAfter: stopruntime.TakeoverFor(stopruntime.DefaultStopGrace)})
}

// inproc is rtmanager wired as cmd/rtmanager wires it (run in main.go),
// with --runtime none and logs at warn to io.Discard.
func inproc(workers int) pipeline {
	return func(ctx context.Context, e *env) (*instance, error) {
		log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
		ropts, err := redis.ParseURL(e.srv.URL())
		if err != nil {
			return nil, err
		}
		ropts.PoolSize = max(ropts.PoolSize, workers+8)
		// RESP2: rtmanager uses no RESP3 feature, and RESP3 costs a check for
		// push notifications on every reply.
		ropts.Protocol = 2
		rdb := redis.NewClient(ropts)
		doc, err := api.Load()
		if err != nil {
			return nil, err
		}
		svc, err := newStopService(rdb, log)
		if err != nil {
			return nil, err
		}
		reg := prometheus.NewRegistry()
		m := metrics.New(reg)
		run, err := service.Start(ctx, rdb, service.Options{
			Stopper: svc, Workers: workers, Contract: doc, Logger: log, Metrics: m,
			Broker: redisstream.Options{
				Groups:   map[string]string{runtimejobs.StopJobsChannelPath: groupName},
				Consumer: "bench-inproc",
				StartID:  "0",
				Observer: m,
			},
		})
		if err != nil {
			return nil, err
		}
		return &instance{
			inProcess: true,
			ready:     waitGroupExists(e.rdb, groupName),
			stop: func() stopInfo {
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err := run.Close(sctx)
				_ = rdb.Close()
				return stopInfo{err: err}
			},
		}, nil
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// binary runs n rtmanager processes (the built binary) in one group.
func binary(bin string, n, workers int) pipeline {
	return func(ctx context.Context, e *env) (*instance, error) {
		type proc struct {
			cmd    *exec.Cmd
			port   int
			stderr *syncBuffer
			done   chan error
		}
		var procs []*proc
		kill := func() {
			for _, p := range procs {
				_ = p.cmd.Process.Kill()
				_ = <-p.done
			}
		}
		for i := 0; i < n; i++ {
			port, err := freePort()
			if err != nil {
				kill()
				return nil, err
			}
			p := &proc{port: port, stderr: &syncBuffer{}, done: make(chan error, 1)}
			p.cmd = exec.Command(bin, "--redis-url", e.srv.URL(), "--runtime", "none", "--log-level", "warn",
				"--http-addr", "127.0.0.1:"+strconv.Itoa(port), "--consumer", "bench-c"+strconv.Itoa(i+1),
				"--workers", strconv.Itoa(workers), "--start-id", "0")
			if len(e.cfg.BinaryEnv) > 0 {
				p.cmd.Env = append(os.Environ(), e.cfg.BinaryEnv...)
			}
			p.cmd.Stdout, p.cmd.Stderr = io.Discard, p.stderr
			if err := p.cmd.Start(); err != nil {
				kill()
				return nil, err
			}
			go func() { p.done <- p.cmd.Wait() }()
			procs = append(procs, p)
		}
		ready := func(ctx context.Context) error {
			for _, p := range procs {
				url := "http://127.0.0.1:" + strconv.Itoa(p.port) + "/readyz"
				for {
					resp, err := http.Get(url)
					if err == nil {
						resp.Body.Close()
						if resp.StatusCode == 200 {
							break
						}
					}
					select {
					case <-ctx.Done():
						return fmt.Errorf("%s: %w; stderr: %s", url, ctx.Err(), p.stderr.String())
					case err := <-p.done:
						return fmt.Errorf("rtmanager exited: %v; stderr: %s", err, p.stderr.String())
					case <-time.After(5 * time.Millisecond):
					}
				}
			}
			return nil
		}
		pids := make([]int, len(procs))
		for i, p := range procs {
			pids[i] = p.cmd.Process.Pid
		}
		return &instance{
			ready: ready,
			pids:  pids,
			stop: func() stopInfo {
				var info stopInfo
				for _, p := range procs {
					pm, err := scrapeProcess(p.port)
					if err != nil && info.err == nil {
						info.err = fmt.Errorf("scrape metrics: %w; stderr: %s", err, p.stderr.String())
					}
					info.acks = append(info.acks, pm.acks)
					info.gcs = append(info.gcs, pm.gcs)
					info.rss = append(info.rss, peakRSSMiB(p.cmd.Process.Pid))
				}
				for _, p := range procs {
					_ = p.cmd.Process.Signal(syscall.SIGTERM)
				}
				for _, p := range procs {
					select {
					case _ = <-p.done:
					case <-time.After(15 * time.Second):
						_ = p.cmd.Process.Kill()
						_ = <-p.done
					}
				}
				return info
			},
		}, nil
	}
}

// procMetrics is what rtbench reads from an rtmanager process's /metrics.
type procMetrics struct {
	acks int64 // rtmanager_acks_total, all labels
	gcs  int64 // go_gc_duration_seconds_count: collections over its life
}

// scrapeProcess reads the /metrics of one process.
func scrapeProcess(port int) (procMetrics, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/metrics")
	if err != nil {
		return procMetrics{}, err
	}
	defer resp.Body.Close()
	return parseProcMetrics(resp.Body)
}

// parseProcMetrics reads procMetrics from a Prometheus text exposition.
func parseProcMetrics(r io.Reader) (procMetrics, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var acks float64
	var m procMetrics
	for sc.Scan() {
		line := sc.Text()
		acked := strings.HasPrefix(line, "rtmanager_acks_total{")
		gc := strings.HasPrefix(line, "go_gc_duration_seconds_count ")
		if !acked && !gc {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		switch {
		case err != nil:
		case acked:
			acks += v
		default:
			m.gcs = int64(v)
		}
	}
	m.acks = int64(acks)
	return m, sc.Err()
}

// peakRSSMiB is VmHWM of a live process, in MiB (0 when unreadable).
func peakRSSMiB(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			kb, _ := strconv.ParseFloat(f[0], 64)
			return kb / 1024
		}
	}
	return 0
}

// oldDesign reimplements the replaced consumer's design as a reference: one
// XREAD COUNT 1 loop from an offset stored in Redis; per entry: decode, the
// orchestrator call, one result XADD, one offset SET.
func oldDesign() pipeline {
	return func(ctx context.Context, e *env) (*instance, error) {
		log := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelWarn}))
		rdb := redis.NewClient(&redis.Options{Addr: e.srv.Addr(), PoolSize: 4})
		svc, err := newStopService(rdb, log)
		if err != nil {
			return nil, err
		}
		const offsetKey = "rtmanager:stream_offsets:stopjobs"
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- func() error {
				last, err := rdb.Get(cctx, offsetKey).Result()
				if errors.Is(err, redis.Nil) {
					last = "0-0"
				} else if err != nil {
					return err
				}
				for cctx.Err() == nil {
					streams, err := rdb.XRead(cctx, &redis.XReadArgs{Streams: []string{jobsStream, last}, Count: 1, Block: 100 * time.Millisecond}).Result()
					if errors.Is(err, redis.Nil) {
						continue
					}
					if err != nil {
						if cctx.Err() != nil {
							return nil
						}
						return err
					}
					for _, s := range streams {
						for _, m := range s.Messages {
							oldHandle(cctx, rdb, svc, m)
							if err := rdb.Set(cctx, offsetKey, m.ID, 0).Err(); err != nil {
								if cctx.Err() != nil {
									return nil
								}
								return err
							}
							last = m.ID
						}
					}
				}
				return nil
			}()
		}()
		return &instance{inProcess: true, stop: func() stopInfo {
			cancel()
			err := <-done
			_ = rdb.Close()
			return stopInfo{err: err}
		}}, nil
	}
}

func oldHandle(ctx context.Context, rdb *redis.Client, svc *stopruntime.Service, m redis.XMessage) {
	gid, _ := m.Values["game_id"].(string)
	reason, _ := m.Values["reason"].(string)
	gid, reason = strings.TrimSpace(gid), strings.TrimSpace(reason)
	if gid == "" || !stopruntime.KnownReason(reason) {
		return // the old consumer logged and skipped undecodable entries
	}
	var reqAt int64
	if s, ok := m.Values["requested_at_ms"].(string); ok {
		reqAt, _ = strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	}
	res, err := svc.Handle(ctx, stopruntime.Input{GameID: gid, Reason: reason, OpSource: stopruntime.OpSourceLobbyStream, SourceRef: m.ID, RequestedAtMS: reqAt})
	if err != nil {
		return // logged and skipped
	}
	_ = rdb.XAdd(ctx, &redis.XAddArgs{Stream: resultsStream, Values: resultFields(m.ID, gid, res.Outcome, res.ErrorCode, res.ErrorMessage, res.Record.ContainerID, res.Record.EngineEndpoint)}).Err()
}

// resultFields is a RuntimeJobResult as fields (as the broker writes it).
func resultFields(jobID, gameID string, outcome stopruntime.Outcome, code, msg, container, endpoint string) []any {
	if outcome != stopruntime.OutcomeSuccess {
		container, endpoint = "", ""
	}
	return []any{"completed_at_ms", time.Now().UnixMilli(), "container_id", container, "engine_endpoint", endpoint,
		"error_code", code, "error_message", msg, "game_id", gameID, "job_id", jobID, "operation", "stop", "outcome", string(outcome)}
}

// ceiling is the Redis ceiling: no framework, one loop of XREADGROUP COUNT b;
// for the batch, the begin scripts pipelined, then the finish scripts with
// their operation log entries pipelined, then MULTI(XADD results…, XACK
// ids…). Entries of one game in one batch go in successive rounds, so the
// per-game order holds. It runs in rtbench's process; ceilingProcess runs
// the same loop in a process of its own.
func ceiling(batch int) pipeline {
	return func(ctx context.Context, e *env) (*instance, error) {
		c, err := newCeilingConsumer(ctx, e.srv.Addr(), batch)
		if err != nil {
			return nil, err
		}
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- c.run(cctx) }()
		return &instance{inProcess: true, stop: func() stopInfo {
			cancel()
			err := <-done
			c.close()
			return stopInfo{err: err}
		}}, nil
	}
}

// ceilingGroup is the consumer group of the Redis ceiling.
const ceilingGroup = "ceiling"

// ceilingConsumer is the Redis ceiling's loop and what it holds.
type ceilingConsumer struct {
	rdb           *redis.Client
	st            *runtimestore.Store
	begin, finish *redis.Script
	batch         int
}

// newCeilingConsumer loads the stop scripts and creates the ceiling's group
// on the job stream (from its start).
func newCeilingConsumer(ctx context.Context, addr string, batch int) (*ceilingConsumer, error) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 4})
	c := &ceilingConsumer{rdb: rdb, st: runtimestore.New(rdb, runtimestore.Options{}), batch: batch,
		begin: redis.NewScript(runtimestore.BeginLua), finish: redis.NewScript(runtimestore.FinishLua)}
	for _, s := range []*redis.Script{c.begin, c.finish} {
		if err := s.Load(ctx, rdb).Err(); err != nil {
			_ = rdb.Close()
			return nil, fmt.Errorf("load stop script: %w", err)
		}
	}
	if err := rdb.XGroupCreateMkStream(ctx, jobsStream, ceilingGroup, "0").Err(); err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		_ = rdb.Close()
		return nil, fmt.Errorf("create group %s: %w", ceilingGroup, err)
	}
	return c, nil
}

// run consumes until ctx ends (nil) or Redis fails (the error).
func (c *ceilingConsumer) run(ctx context.Context) error {
	for ctx.Err() == nil {
		streams, err := c.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: ceilingGroup, Consumer: "c1", Streams: []string{jobsStream, ">"}, Count: int64(c.batch), Block: 100 * time.Millisecond}).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, s := range streams {
			if err := ceilingBatch(ctx, c.rdb, c.st, c.begin, c.finish, ceilingGroup, s.Messages); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
		}
	}
	return nil
}

func (c *ceilingConsumer) close() { _ = c.rdb.Close() }

type ceilJob struct {
	id, game, reason string
	reqAt            int64
	verdict          string
	rec              map[string]string
	outcome          stopruntime.Outcome
	code, msg        string
}

func ceilingBatch(ctx context.Context, rdb *redis.Client, st *runtimestore.Store, begin, finish *redis.Script, group string, msgs []redis.XMessage) error {
	// Rounds: the k-th entry of a game goes to round k.
	var rounds [][]*ceilJob
	seen := map[string]int{}
	for _, m := range msgs {
		j := &ceilJob{id: m.ID}
		j.game, _ = m.Values["game_id"].(string)
		j.reason, _ = m.Values["reason"].(string)
		if s, ok := m.Values["requested_at_ms"].(string); ok {
			j.reqAt, _ = strconv.ParseInt(s, 10, 64)
		}
		k := seen[j.game]
		seen[j.game] = k + 1
		if k == len(rounds) {
			rounds = append(rounds, nil)
		}
		rounds[k] = append(rounds[k], j)
	}
	var all []*ceilJob
	for _, round := range rounds {
		if err := ceilingRound(ctx, rdb, st, begin, finish, round); err != nil {
			return err
		}
		all = append(all, round...)
	}
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ids := make([]string, 0, len(msgs))
		for _, j := range all {
			container, endpoint := j.rec["container_id"], j.rec["engine_endpoint"]
			p.XAdd(ctx, &redis.XAddArgs{Stream: resultsStream, Values: resultFields(j.id, j.game, j.outcome, j.code, j.msg, container, endpoint)})
		}
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		p.XAck(ctx, jobsStream, group, ids...)
		return nil
	})
	return err
}

func ceilingRound(ctx context.Context, rdb *redis.Client, st *runtimestore.Store, begin, finish *redis.Script, jobs []*ceilJob) error {
	now := time.Now().UnixMilli()
	cmds := make([]*redis.Cmd, len(jobs))
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, j := range jobs {
			cmds[i] = begin.EvalSha(ctx, p, []string{st.RecordKey(j.game)}, j.id, now, stopruntime.TakeoverFor(stopruntime.DefaultStopGrace).Milliseconds())
		}
		return nil
	})
	if err != nil {
		return err
	}
	for i, j := range jobs {
		// One reply per key; here one key per call.
		all, err := cmds[i].Slice()
		if err != nil {
			return err
		}
		verdict, vals, n, err := runtimestore.SplitStopReply(all[0])
		if err != nil {
			return fmt.Errorf("begin script: %w", err)
		}
		j.verdict = verdict
		j.rec = map[string]string{}
		for k, name := range runtimestore.RecordFields()[:n] {
			j.rec[name] = vals[k]
		}
		switch j.verdict {
		case "started", "resumed", "taken_over":
			j.outcome = stopruntime.OutcomeSuccess
		case "not_found":
			j.outcome, j.code, j.msg = stopruntime.OutcomeFailure, stopruntime.CodeNotFound, "no runtime record for game "+j.game
		case "replay":
			j.outcome, j.code, j.msg = stopruntime.OutcomeSuccess, stopruntime.CodeReplayNoOp, "runtime already "+j.rec["status"]
		default: // done, busy: answer from the record
			j.outcome, j.code = stopruntime.OutcomeSuccess, stopruntime.CodeReplayNoOp
		}
	}
	done := time.Now().UnixMilli()
	_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, j := range jobs {
			if j.verdict != "started" && j.verdict != "resumed" && j.verdict != "taken_over" {
				p.XAdd(ctx, opEntry(st, j, now, done))
				continue
			}
			last, _ := json.Marshal(stopruntime.StoredResult{Outcome: j.outcome, ContainerID: j.rec["container_id"], EngineEndpoint: j.rec["engine_endpoint"]})
			finish.EvalSha(ctx, p, []string{st.RecordKey(j.game)}, j.id, done, stopruntime.StatusStopped, last)
			p.XAdd(ctx, opEntry(st, j, now, done))
		}
		return nil
	})
	return err
}

// opEntry is the operation log entry runtimestore writes.
func opEntry(st *runtimestore.Store, j *ceilJob, started, finished int64) *redis.XAddArgs {
	values := []any{"game_id", j.game, "operation", "stop", "source", string(stopruntime.OpSourceLobbyStream), "source_ref", j.id,
		"reason", j.reason, "outcome", string(j.outcome), "error_code", j.code, "error_message", j.msg,
		"container_id", j.rec["container_id"], "started_at_ms", started, "finished_at_ms", finished}
	if j.reqAt > 0 {
		values = append(values, "requested_at_ms", j.reqAt)
	}
	return &redis.XAddArgs{Stream: st.OperationsKey(), MaxLen: 100000, Approx: true, Values: values}
}

// syncBuffer is a bytes.Buffer that an exec.Cmd's copying goroutine may
// write while rtbench reads it for an error message.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
