package docker_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/docker"
)

// A start publishes the engine's port on 127.0.0.1; a retry of the same job
// reuses its container; Find lists the game's containers by label; Remove
// removes them.
func TestStartPublishesAndAdopts(t *testing.T) {
	e, d := engineDriver(t)
	ctx := context.Background()
	spec := docker.StartSpec{GameID: "g-start:1", JobID: "17-0", Image: e.Image(), Port: 7000,
		Env: map[string]string{"ENGINE_ADDR": "0.0.0.0:7000", "ENGINE_GAME": "g-start:1"}, MemoryBytes: 64 << 20, CPUs: 0.5}
	st, err := d.Start(ctx, spec)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Remove(context.Background(), st.ID) })
	host, _, err := net.SplitHostPort(st.Endpoint)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1", host)
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", st.Endpoint, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 60*time.Second, 50*time.Millisecond, "the engine answers on the published port")

	again, err := d.Start(ctx, spec)
	require.NoError(t, err)
	assert.Equal(t, st, again, "the same job's container is reused, not a second one")
	found, err := d.Find(ctx, "g-start:1")
	require.NoError(t, err)
	require.Len(t, found, 1)
	assert.Equal(t, st, found[0])

	require.NoError(t, d.Remove(ctx, st.ID))
	require.NoError(t, d.Remove(ctx, st.ID), "already gone")
	found, err = d.Find(ctx, "g-start:1")
	require.NoError(t, err)
	assert.Empty(t, found)

	_, err = d.Start(ctx, docker.StartSpec{GameID: "g-start:2", JobID: "1-0", Image: "localhost/no-such-image:0", Port: 1})
	require.Error(t, err)
	found, err = d.Find(ctx, "g-start:2")
	require.NoError(t, err)
	assert.Empty(t, found)
}
