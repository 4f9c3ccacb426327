package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/runtimewatch"
)

// watchConfig is the runtime watch's part of the configuration.
type watchConfig struct {
	Enabled           bool
	ReconcileInterval time.Duration
	ProbeInterval     time.Duration
	ProbeTimeout      time.Duration
	ProbeFailures     int
}

func (w *watchConfig) flags(fs *flag.FlagSet) {
	fs.BoolVar(&w.Enabled, "watch", true, "watch running engines and report on runtime:events when one exits or changes health on its own (docs/watch.md)")
	fs.DurationVar(&w.ReconcileInterval, "reconcile-interval", runtimewatch.DefaultReconcileInterval, "how often the records that say running are checked against their runtimes (also at start-up)")
	fs.DurationVar(&w.ProbeInterval, "probe-interval", runtimewatch.DefaultProbeInterval, "how often each running engine's endpoint is checked with a TCP connect; 0 turns health checks off")
	fs.DurationVar(&w.ProbeTimeout, "probe-timeout", runtimewatch.DefaultProbeTimeout, "how long one health check may take")
	fs.IntVar(&w.ProbeFailures, "probe-failures", runtimewatch.DefaultFailureThreshold, "health checks failed in a row that make an engine unhealthy")
}

func (w *watchConfig) validate() error {
	switch {
	case w.ReconcileInterval <= 0:
		return usagef("invalid --reconcile-interval %s: want a positive duration", w.ReconcileInterval)
	case w.ProbeInterval < 0:
		return usagef("invalid --probe-interval %s: want 0 (off) or a positive duration", w.ProbeInterval)
	case w.ProbeTimeout <= 0 || (w.ProbeInterval > 0 && w.ProbeTimeout > w.ProbeInterval):
		return usagef("invalid --probe-timeout %s: want a positive duration no longer than --probe-interval", w.ProbeTimeout)
	case w.ProbeFailures < 1:
		return usagef("invalid --probe-failures %d: want 1 or more", w.ProbeFailures)
	}
	return nil
}

// startWatch runs the runtime watch over the drivers that can tell whether
// a runtime runs (none with --runtime none, or when --watch=false). The
// drivers are the start service's, so the exit status of the engines this
// process started is known. Replicas share the games by the job stream's
// consumer group.
func startWatch(cfg config, rdb redis.UniversalClient, doc *api.Document, layout api.Layout, drivers map[string]runtimewatch.Inspector, group string, m runtimewatch.Metrics, log *slog.Logger) (*runtimewatch.Watcher, error) {
	if !cfg.Watch.Enabled || len(drivers) == 0 {
		return nil, nil
	}
	ch, ok := doc.ChannelByAddress(runtimejobs.RuntimeEventsChannelPath)
	if !ok {
		return nil, fmt.Errorf("runtime watch: the contract has no channel %s", runtimejobs.RuntimeEventsChannelPath)
	}
	probe := cfg.Watch.ProbeInterval
	if probe == 0 {
		probe = -1 // off
	}
	jobs, ok := doc.ChannelByAddress(runtimejobs.StopJobsChannelPath)
	if !ok {
		return nil, fmt.Errorf("runtime watch: the contract has no channel %s", runtimejobs.StopJobsChannelPath)
	}
	w, err := runtimewatch.New(runtimestore.New(rdb, storeOptions(layout, log)), runtimewatch.Options{
		Drivers:           drivers,
		ReconcileInterval: cfg.Watch.ReconcileInterval,
		ProbeInterval:     probe,
		ProbeTimeout:      cfg.Watch.ProbeTimeout,
		FailureThreshold:  cfg.Watch.ProbeFailures,
		Events:            ch,
		Layout:            layout,
		HealthPath: func(engine string) string {
			p, _ := cfg.Engines.Get(engine)
			return p.HealthPath
		},
		// The replicas are the group's consumers; every replica reads every
		// shard, so shard 0's group names them all.
		Shard: &runtimewatch.GroupShard{RDB: rdb, Stream: layout.Key(jobs, 0), Group: group,
			Self: cfg.Consumer, Live: 2 * max(cfg.Watch.ReconcileInterval, time.Minute)},
		Logger:  log.With("component", "runtimewatch"),
		Metrics: m,
	})
	if err != nil {
		return nil, fmt.Errorf("create runtime watch: %w", err)
	}
	w.Start()
	return w, nil
}

// closeWatch stops the watch, if any.
func closeWatch(ctx context.Context, w *runtimewatch.Watcher) {
	if w != nil {
		_ = w.Close(ctx)
	}
}
