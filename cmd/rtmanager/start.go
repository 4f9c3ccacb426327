package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/engines"
	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/startruntime"
	"galaxy/rtmanager/internal/stopruntime"
)

// newStartService builds the start orchestrator for the configured runtime:
// --runtime process starts process profiles, --runtime docker docker
// profiles, --runtime none records every profile's start without running
// anything. A profile whose runtime has no driver here is refused as
// invalid_job.
func newStartService(cfg config, rdb *redis.Client, log *slog.Logger, dock *docker.Driver) (*startruntime.Service, func(), error) {
	drivers := map[string]startruntime.Driver{}
	closeDriver := func() {}
	switch cfg.Runtime {
	case stopruntime.RuntimeDocker:
		// The stop service's driver: one --docker-concurrency bound for both.
		drivers[engines.RuntimeDocker] = startruntime.Docker{D: dock}
	case stopruntime.RuntimeProcess:
		drivers[engines.RuntimeProcess] = startruntime.Process{
			D:     process.New(process.Options{AllowUIDs: cfg.ProcessUIDs, AnyUID: cfg.ProcessAnyUID}),
			Grace: cfg.StopGrace,
		}
	case stopruntime.RuntimeNone:
		drivers[engines.RuntimeProcess] = startruntime.None{}
		drivers[engines.RuntimeDocker] = startruntime.None{}
	}
	svc, err := startruntime.New(runtimestore.New(rdb, runtimestore.Options{}), cfg.Engines, drivers, startruntime.Options{
		StartTimeout:  cfg.StartTimeout,
		TakeoverAfter: max(2*time.Minute, 2*(cfg.StartTimeout+cfg.StopGrace+30*time.Second)),
		Logger:        log,
	})
	if err != nil {
		closeDriver()
		return nil, nil, fmt.Errorf("create start service: %w", err)
	}
	return svc, closeDriver, nil
}
