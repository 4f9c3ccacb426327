package main

import (
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/engines"
	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/runtimewatch"
	"galaxy/rtmanager/internal/startruntime"
	"galaxy/rtmanager/internal/stopruntime"
)

// newStartService builds the start orchestrator for the configured runtime:
// --runtime process starts process profiles, --runtime docker docker
// profiles, --runtime none records every profile's start without running
// anything. A profile whose runtime has no driver here is refused as
// invalid_job.
//
// It also returns the drivers the runtime watch inspects: the same
// instances, so the exit status of the engines they start is known.
func newStartService(cfg config, rdb redis.UniversalClient, layout api.Layout, log *slog.Logger, dock *docker.Driver) (*startruntime.Service, map[string]runtimewatch.Inspector, func(), error) {
	drivers := map[string]startruntime.Driver{}
	watched := map[string]runtimewatch.Inspector{}
	closeDriver := func() {}
	switch cfg.Runtime {
	case stopruntime.RuntimeDocker:
		// The stop service's driver: one --docker-concurrency bound for all.
		drivers[engines.RuntimeDocker] = startruntime.Docker{D: dock}
		watched[stopruntime.RuntimeDocker] = dock
	case stopruntime.RuntimeProcess:
		d := process.New(process.Options{AllowUIDs: cfg.ProcessUIDs, AnyUID: cfg.ProcessAnyUID})
		drivers[engines.RuntimeProcess] = startruntime.Process{D: d, Grace: cfg.StopGrace}
		watched[stopruntime.RuntimeProcess] = d
	case stopruntime.RuntimeNone:
		drivers[engines.RuntimeProcess] = startruntime.None{}
		drivers[engines.RuntimeDocker] = startruntime.None{}
	}
	svc, err := startruntime.New(runtimestore.New(rdb, storeOptions(layout, log)), cfg.Engines, drivers, startruntime.Options{
		StartTimeout: cfg.StartTimeout,
		// A start step waits up to the start timeout, then may remove the
		// runtime (a stop: grace plus margin).
		TakeoverAfter: stopruntime.TakeoverFor(cfg.StartTimeout + cfg.StopGrace),
		Logger:        log,
	})
	if err != nil {
		closeDriver()
		return nil, nil, nil, fmt.Errorf("create start service: %w", err)
	}
	return svc, watched, closeDriver, nil
}
