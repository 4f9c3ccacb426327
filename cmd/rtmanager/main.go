// Command rtmanager is the Runtime Manager of the galaxy game platform: it
// consumes stop jobs from runtime:stop_jobs through the generated
// AppController on the Redis Streams broker, stops each game's runtime, and
// answers each job exactly once on runtime:job_results. `rtmanager --help`
// lists its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/console"
	"galaxy/rtmanager/internal/metrics"
	"galaxy/rtmanager/internal/redisclient"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/redisurl"
	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/runtimes/none"
	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/service"
	"galaxy/rtmanager/internal/stopruntime"
)

func main() {
	// SIGHUP too: a closed terminal or a supervisor's hang-up must drain like
	// SIGTERM, not kill in-flight jobs (Go's default for SIGHUP is to exit).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	// go-redis logs every failed dial on its own; the broker already reports
	// Redis outages, rate-limited, so silence the library's logger.
	redis.SetLogger(quietRedis{})
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(exitCode(err, os.Stderr))
}

func exitCode(err error, stderr io.Writer) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, "rtmanager: "+ue.msg)
		return 2
	default:
		fmt.Fprintln(stderr, "rtmanager: "+err.Error())
		return 1
	}
}

// run starts rtmanager and returns when ctx ends (after a graceful
// shutdown), start-up fails, or Redis reveals a configuration error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	stopProfile, err := startCPUProfile(cfg.CPUProfile)
	if err != nil {
		return err
	}
	defer func() {
		if perr := stopProfile(); perr != nil {
			log.Error("cpu profile", "err", perr.Error())
		}
	}()

	rdb, err := redisclient.New(cfg.RedisURL, redisclient.Tuning{
		// Pool sized for the workers and the broker's own loops (per node
		// on a cluster).
		MinPoolSize: cfg.Workers + 8,
		// RESP2: rtmanager uses no RESP3 feature, and RESP3 costs a check
		// for push notifications on every reply.
		Protocol: 2,
	})
	if err != nil {
		return usagef("invalid --redis-url %s: %s", redisurl.Redacted(cfg.RedisURL), err)
	}
	defer rdb.Close()
	// A configuration error found once Redis answers ends the run (exit 2).
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	if err := checkRedis(ctx, rdb, log, fail); err != nil {
		return err
	}

	doc, err := api.Load()
	if err != nil {
		return fmt.Errorf("load contract: %w", err)
	}
	// Where the keys are (--shards): the broker works it out the same way;
	// the stores, the metrics and the watch need it before the broker runs.
	layout, err := api.NewLayout(doc, cfg.Shards, redisclient.IsCluster(rdb))
	if err != nil {
		return usagef("invalid --shards %d: %s", cfg.Shards, err)
	}
	// One docker driver for stops and starts: --docker-concurrency bounds
	// the process's requests to the daemon, not each service's.
	var dock *docker.Driver
	if cfg.Runtime == stopruntime.RuntimeDocker {
		if dock, err = startDocker(ctx, cfg, log); err != nil {
			return err
		}
		defer dock.Close()
	}
	svc, runtimeReady, err := newStopService(cfg, rdb, layout, log, dock)
	if err != nil {
		return err
	}
	starter, watched, closeStartDriver, err := newStartService(cfg, rdb, layout, log, dock)
	if err != nil {
		return err
	}
	defer closeStartDriver()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	if dock != nil {
		metrics.RegisterDockerSlots(reg, dock)
	}

	group := cfg.Group
	jobsCh, _ := doc.ChannelByAddress(runtimejobs.StopJobsChannelPath)
	if group == "" {
		group = jobsCh.Stream.Group
	}
	// One series per channel, summed over its shard keys.
	for _, addr := range []string{runtimejobs.StopJobsChannelPath, runtimejobs.StartJobsChannelPath} {
		ch, _ := doc.ChannelByAddress(addr)
		reg.MustRegister(metrics.NewShardedGroupCollector(rdb, addr, layout.Keys(ch), group))
	}

	// Bind before consuming: a bind failure then exits with no job read
	// ahead and no stop begun.
	var stopping atomic.Bool
	var broker atomic.Pointer[redisstream.Broker]
	rd := &readiness{check: func(ctx context.Context) error {
		if stopping.Load() {
			return errors.New("shutting down")
		}
		// Outside causes first: an operator reading "starting" would not
		// learn that Redis or the runtime's daemon is what holds it up.
		b := broker.Load()
		if b != nil {
			// The node of every key the broker owns (on a cluster each
			// key's master: a PING would go to a random node).
			if err := b.CheckRedis(ctx); err != nil {
				return fmt.Errorf("redis unreachable: %w", err)
			}
		} else if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis unreachable: %w", err)
		}
		if err := runtimeReady(ctx); err != nil {
			return err
		}
		if b == nil {
			return errors.New("starting")
		}
		return b.Health()
	}, timeout: time.Second}
	var con *console.Console
	if cfg.Console && cfg.HTTPAddr != "" {
		con, err = console.New(rdb, console.Options{
			Contract: doc, Group: group, Layout: layout, Token: cfg.ConsoleToken,
			Ready: rd.ready, Metrics: m.Totals(), Logger: log,
		})
		if err != nil {
			return err
		}
		go con.Run(ctx)
	}
	srv, err := startHTTP(cfg.HTTPAddr, reg, rd, con, log)
	if err != nil {
		return usagef("listen on --http-addr %s: %s", cfg.HTTPAddr, err)
	}
	psrv, err := startPprof(cfg.PprofAddr, log)
	if err != nil {
		if srv != nil {
			_ = srv.Close()
		}
		return usagef("listen on --pprof-addr %s: %s", cfg.PprofAddr, err)
	}
	if psrv != nil {
		defer psrv.Close()
	}

	stopper := &forgetOnBegin{Stopper: svc}
	svcRun, err := service.Start(ctx, rdb, service.Options{
		Stopper:  stopper,
		Workers:  cfg.Workers,
		Contract: doc,
		Logger:   log,
		Metrics:  m,
		// Start jobs: their own workers on the same broker.
		Starter: starter, StartMetrics: m,
		Broker: brokerOptions(cfg, group, m),
	})
	if err != nil {
		if srv != nil {
			_ = srv.Close()
		}
		return err
	}
	if got := svcRun.Broker.Layout(); got != layout {
		_ = svcRun.Close(context.Background())
		if srv != nil {
			_ = srv.Close()
		}
		return fmt.Errorf("the broker's key layout (%d shards, sharded %t) is not the stores' (%d, %t)", got.Shards, got.Sharded, layout.Shards, layout.Sharded)
	}
	broker.Store(svcRun.Broker)
	watch, err := startWatch(cfg, rdb, doc, layout, watched, group, m, log)
	if err != nil {
		_ = svcRun.Close(context.Background())
		if srv != nil {
			_ = srv.Close()
		}
		return err
	}
	starter.OnRunning(watch.Watch)
	stopper.watch.Store(watch)

	log.Info("rtmanager started", "consumer", cfg.Consumer, "group", group, "workers", cfg.Workers,
		"shards", layout.Shards, "sharded_keys", layout.Sharded,
		"runtime", cfg.Runtime, "redis", redisurl.Redacted(cfg.RedisURL), "http_addr", cfg.HTTPAddr,
		"atomic_publish_ack", svcRun.Broker.Atomic(), "contract_version", doc.Version)
	<-ctx.Done()

	stopping.Store(true)
	log.Info("shutting down: no new jobs; waiting for in-flight jobs", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := svcRun.Close(sctx); err != nil {
		log.Warn("in-flight jobs did not finish in time; they stay pending for the next start", "err", err.Error())
	}
	closeWatch(sctx, watch)
	if srv != nil {
		_ = srv.Shutdown(sctx)
	}
	log.Info("rtmanager stopped")
	var ue *usageError
	if cause := context.Cause(ctx); errors.As(cause, &ue) {
		return cause
	}
	return nil
}

// brokerOptions are the broker's options from the flags; what no flag sets
// takes the broker's default.
func brokerOptions(cfg config, group string, obs redisstream.Observer) redisstream.Options {
	return redisstream.Options{
		Groups:        map[string]string{runtimejobs.StopJobsChannelPath: group, runtimejobs.StartJobsChannelPath: group},
		Consumer:      cfg.Consumer,
		Shards:        cfg.Shards,
		StartID:       cfg.StartID,
		Prefetch:      cfg.Prefetch,
		MaxContinuing: maxContinuing(cfg.MaxWaitingStops),
		MaxDeliveries: cfg.MaxDeliveries,
		ClaimIdle:     cfg.ClaimIdle,
		RetryBackoff:  cfg.RetryBackoff,
		Observer:      obs,
	}
}

// maxContinuing maps --max-waiting-stops to the broker's option, where 0
// means the default and a negative value none.
func maxContinuing(flag int) int {
	if flag == 0 {
		return -1
	}
	return flag
}

// newStopService builds the stop service with the driver of --runtime
// (dock for docker); the returned ready func tells whether the runtime can
// be reached (/readyz).
func newStopService(cfg config, rdb redis.UniversalClient, layout api.Layout, log *slog.Logger, dock *docker.Driver) (*stopruntime.Service, func(context.Context) error, error) {
	drivers := map[string]stopruntime.Driver{stopruntime.RuntimeNone: none.Driver{}}
	ready := func(context.Context) error { return nil }
	switch cfg.Runtime {
	case stopruntime.RuntimeDocker:
		drivers[stopruntime.RuntimeDocker] = dock
		ready = func(ctx context.Context) error { _, err := dock.Check(ctx); return err }
	case stopruntime.RuntimeProcess:
		drivers[stopruntime.RuntimeProcess] = process.New(process.Options{AllowUIDs: cfg.ProcessUIDs, AnyUID: cfg.ProcessAnyUID})
	}
	svc, err := stopruntime.New(runtimestore.New(rdb, storeOptions(layout, log)), drivers, stopruntime.Options{
		StopGrace: cfg.StopGrace, Logger: log,
		TakeoverAfter: stopruntime.TakeoverFor(cfg.StopGrace),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create stop service: %w", err)
	}
	return svc, ready, nil
}

// startHTTP serves /metrics, /healthz, /readyz and, when con is not nil,
// the operator console at / (the three paths above are matched first).
func startHTTP(addr string, reg *prometheus.Registry, rd *readiness, con *console.Console, log *slog.Logger) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := rd.ready(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if con != nil {
		mux.Handle("/", con.Handler())
		// Live result streams end on Shutdown instead of holding it up.
		srv.RegisterOnShutdown(con.Close)
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("http server stopped", "err", err.Error())
		}
	}()
	return srv, nil
}

func newLogger(cfg config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// quietRedis drops go-redis's own log lines.
type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

// storeOptions are the runtime store's options: the broker's key layout,
// so a game's record and operation log share its jobs' shard, and log, so
// the store's warnings reach rtmanager's log.
func storeOptions(layout api.Layout, log *slog.Logger) runtimestore.Options {
	return runtimestore.Options{Layout: layout, Logger: log}
}
