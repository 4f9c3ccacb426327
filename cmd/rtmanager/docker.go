package main

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"galaxy/rtmanager/internal/runtimes/docker"
)

// startDocker builds the docker driver and checks the daemon once. An API
// version the driver cannot use (configured, or the daemon's) stops
// start-up with exit code 2; an unreachable daemon does not: rtmanager keeps
// retrying its stops and /readyz says why it is not ready.
func startDocker(ctx context.Context, cfg config, log *slog.Logger) (*docker.Driver, error) {
	d, err := docker.New(docker.Options{Host: cfg.DockerHost, APIVersion: cfg.DockerAPI, Concurrency: cfg.DockerConcurrency})
	if err != nil {
		return nil, usagef("docker runtime: %s", err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := d.Check(cctx)
	switch {
	case errors.Is(err, docker.ErrUnsupportedAPIVersion):
		_ = d.Close()
		return nil, usagef("docker runtime: %s", err)
	case err != nil:
		log.Warn("docker daemon unreachable at start; will keep trying", "docker_host", d.Host(), "err", err.Error())
	default:
		log.Info("docker daemon", "docker_host", d.Host(), "daemon_api_version", v.Daemon, "api_version", v.Used, "negotiated", v.Negotiated)
	}
	return d, nil
}
