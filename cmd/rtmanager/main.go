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
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/metrics"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/runtimes/none"
	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/service"
	"galaxy/rtmanager/internal/stopruntime"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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
// shutdown) or start-up fails.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)

	ropts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return usagef("invalid --redis-url %s: %s", redactURL(cfg.RedisURL), strings.ReplaceAll(err.Error(), cfg.RedisURL, redactURL(cfg.RedisURL)))
	}
	// Pool sized for the workers and the broker's own loops.
	ropts.PoolSize = max(ropts.PoolSize, cfg.Workers+8)
	// RESP2: rtmanager uses no RESP3 feature, and RESP3 costs a check for
	// push notifications on every reply.
	ropts.Protocol = 2
	rdb := redis.NewClient(ropts)
	defer rdb.Close()
	if err := checkRedis(ctx, rdb, log); err != nil {
		return err
	}

	doc, err := api.Load()
	if err != nil {
		return fmt.Errorf("load contract: %w", err)
	}
	svc, closeDriver, err := newStopService(cfg, rdb, log)
	if err != nil {
		return err
	}
	defer closeDriver()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)

	group := cfg.Group
	jobsCh, _ := doc.ChannelByAddress(runtimejobs.StopJobsChannelPath)
	if group == "" {
		group = jobsCh.Stream.Group
	}
	reg.MustRegister(metrics.NewGroupCollector(rdb, runtimejobs.StopJobsChannelPath, group))
	svcRun, err := service.Start(ctx, rdb, service.Options{
		Stopper:  svc,
		Workers:  cfg.Workers,
		Contract: doc,
		Logger:   log,
		Metrics:  m,
		Broker: redisstream.Options{
			Groups:        map[string]string{runtimejobs.StopJobsChannelPath: group},
			Consumer:      cfg.Consumer,
			StartID:       cfg.StartID,
			Prefetch:      cfg.Prefetch,
			MaxContinuing: maxContinuing(cfg.MaxWaitingStops),
			MaxDeliveries: cfg.MaxDeliveries,
			ClaimIdle:     cfg.ClaimIdle,
			RetryBackoff:  cfg.RetryBackoff,
			Observer:      m,
		},
	})
	if err != nil {
		return err
	}
	broker := svcRun.Broker

	var stopping atomic.Bool
	srv, err := startHTTP(cfg.HTTPAddr, reg, func(ctx context.Context) error {
		if stopping.Load() {
			return errors.New("shutting down")
		}
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("redis unreachable: %w", err)
		}
		return broker.Health()
	}, log)
	if err != nil {
		return usagef("listen on --http-addr %s: %s", cfg.HTTPAddr, err)
	}

	log.Info("rtmanager started", "consumer", cfg.Consumer, "group", group, "workers", cfg.Workers,
		"runtime", cfg.Runtime, "redis", redactURL(cfg.RedisURL), "http_addr", cfg.HTTPAddr,
		"atomic_publish_ack", broker.Atomic(), "contract_version", doc.Version)
	<-ctx.Done()

	stopping.Store(true)
	log.Info("shutting down: no new jobs; waiting for in-flight jobs", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := svcRun.Close(sctx); err != nil {
		log.Warn("in-flight jobs did not finish in time; they stay pending for the next start", "err", err.Error())
	}
	if srv != nil {
		_ = srv.Shutdown(sctx)
	}
	log.Info("rtmanager stopped")
	return nil
}

// maxContinuing maps --max-waiting-stops to the broker's option, where 0
// means the default and a negative value none.
func maxContinuing(flag int) int {
	if flag == 0 {
		return -1
	}
	return flag
}

// checkRedis refuses to start with credentials Redis rejects (exit 2); an
// unreachable Redis is only logged: rtmanager keeps trying and reports not
// ready until it answers.
func checkRedis(ctx context.Context, rdb *redis.Client, log *slog.Logger) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := rdb.Ping(pctx).Err()
	if err == nil {
		return nil
	}
	msg := err.Error()
	if strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH") || strings.Contains(msg, "invalid password") {
		return usagef("redis refused the credentials of --redis-url: %s", msg)
	}
	log.Warn("redis unreachable at start; will keep trying", "err", msg)
	return nil
}

func newStopService(cfg config, rdb *redis.Client, log *slog.Logger) (*stopruntime.Service, func(), error) {
	drivers := map[string]stopruntime.Driver{stopruntime.RuntimeNone: none.Driver{}}
	closeDriver := func() {}
	switch cfg.Runtime {
	case stopruntime.RuntimeDocker:
		d, err := docker.New(docker.Options{Host: cfg.DockerHost})
		if err != nil {
			return nil, nil, usagef("invalid --docker-host: %s", err)
		}
		drivers[stopruntime.RuntimeDocker] = d
		closeDriver = func() { _ = d.Close() }
	case stopruntime.RuntimeProcess:
		drivers[stopruntime.RuntimeProcess] = process.New(process.Options{})
	}
	svc, err := stopruntime.New(runtimestore.New(rdb, runtimestore.Options{}), drivers, stopruntime.Options{
		StopGrace: cfg.StopGrace, Logger: log,
		TakeoverAfter: max(2*time.Minute, 2*(cfg.StopGrace+30*time.Second)),
	})
	if err != nil {
		return nil, nil, fmt.Errorf("create stop service: %w", err)
	}
	return svc, closeDriver, nil
}

func startHTTP(addr string, reg *prometheus.Registry, ready func(context.Context) error, log *slog.Logger) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
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
