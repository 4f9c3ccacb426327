package runtimewatch_test

import (
	"context"
	"testing"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/runtimewatch"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testengine"
)

// On the real engine: a container killed through the engine is reported
// as engine_exited with its exit code (the daemon's die event), once.
func TestDockerContainerKilledIsReported(t *testing.T) {
	eng := testengine.Require(t)
	e := setup(t)
	d, err := docker.New(docker.Options{Host: eng.Host()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	c := eng.MustRun(t, testengine.Spec{Game: "g-watch-docker"})
	_, err = e.store.Register(context.Background(), stopruntime.Record{GameID: "gd", Status: "running",
		ContainerID: c.ID, EngineEndpoint: c.Addr, Runtime: stopruntime.RuntimeDocker})
	require.NoError(t, err)
	e.watcher(t, func(o *runtimewatch.Options) {
		o.Drivers = map[string]runtimewatch.Inspector{stopruntime.RuntimeDocker: d}
	})
	e.settle(t, 1)
	_, err = eng.Client().ContainerKill(context.Background(), c.ID, client.ContainerKillOptions{Signal: "KILL"})
	require.NoError(t, err)
	msgs := e.waitEvents(t, 1)
	assert.Equal(t, "engine_exited", msgs[0].Values["type"])
	assert.Equal(t, "137", msgs[0].Values["exit_code"])
	assert.Equal(t, "false", msgs[0].Values["oom_killed"])
	e.settle(t, 1)
	assert.Len(t, e.events(t), 1)
}
