package process_test

import (
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/process"
)

// A real engine: python3's http.server on the port rtmanager chose, found
// again by its labels, stopped with its group.
func TestStartSpawnsOnChosenPortAndFindsItByLabel(t *testing.T) {
	d := process.New(process.Options{})
	game := "g-start-" + strings.ReplaceAll(t.Name(), "/", "-")
	id, endpoint, err := d.Start(context.Background(), process.StartSpec{
		GameID: game, JobID: "1-0",
		Command: []string{"python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"},
		Env:     map[string]string{"PYTHONDONTWRITEBYTECODE": "1"},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Stop(context.Background(), id, time.Second) })
	assert.True(t, strings.HasPrefix(endpoint, "127.0.0.1:"), endpoint)
	require.Eventually(t, func() bool {
		c, err := net.DialTimeout("tcp", endpoint, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 20*time.Second, 50*time.Millisecond, "the engine listens on the chosen port")

	found, err := d.Find(game, "1-0")
	require.NoError(t, err)
	require.Len(t, found, 1)
	assert.Equal(t, process.Found{ContainerID: id, JobID: "1-0", Endpoint: endpoint}, found[0])
	found, err = d.Find(game, "2-0")
	require.NoError(t, err)
	assert.Empty(t, found, "another job's start does not adopt it")

	require.NoError(t, d.Stop(context.Background(), id, 5*time.Second))
	found, err = d.Find(game, "")
	require.NoError(t, err)
	assert.Empty(t, found)
}

// The engine gets PORT, its profile's env and the labels, and none of
// rtmanager's own environment (which may hold a Redis password).
func TestStartEnvironment(t *testing.T) {
	t.Setenv("RTMANAGER_REDIS_URL", "redis://:secret@127.0.0.1:6379/0")
	d := process.New(process.Options{})
	out := t.TempDir() + "/env"
	id, endpoint, err := d.Start(context.Background(), process.StartSpec{
		GameID: "g-env", JobID: "7-1",
		Command: []string{"sh", "-c", "env > " + out + ".tmp && mv " + out + ".tmp " + out + " && exec sleep 60"},
		Env:     map[string]string{"MODE": "ranked"},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Stop(context.Background(), id, time.Second) })
	var env string
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(out)
		env = string(b)
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	_, port, _ := net.SplitHostPort(endpoint)
	assert.Contains(t, env, "PORT="+port+"\n")
	assert.Contains(t, env, "MODE=ranked\n")
	assert.Contains(t, env, "RTMANAGER_GAME_ID=g-env\n")
	assert.Contains(t, env, "RTMANAGER_START_JOB=7-1\n")
	assert.NotContains(t, env, "secret")
}

// A process the driver could not stop (its uid is not allowed) is never
// started; a missing program is an error, nothing runs.
func TestStartRefusals(t *testing.T) {
	d := process.New(process.Options{AllowUIDs: []int{os.Getuid() + 1}})
	_, _, err := d.Start(context.Background(), process.StartSpec{GameID: "g", JobID: "1-0", Command: []string{"sleep", "60"}})
	require.ErrorIs(t, err, process.ErrRefused)

	d = process.New(process.Options{})
	_, _, err = d.Start(context.Background(), process.StartSpec{GameID: "g", JobID: "1-0", Command: []string{"/nonexistent/engine"}})
	require.Error(t, err)
	_, _, err = d.Start(context.Background(), process.StartSpec{GameID: "g", JobID: "1-0"})
	require.Error(t, err)
}

// An engine whose command execs another program (a shell that execs the
// engine, a pyenv shim) shows an empty environment for an instant during
// each execve(2): a Find right after its Start must still see it, or a
// resumed start would start a second engine for the game.
func TestFindSeesAnEngineInTheMiddleOfItsExecs(t *testing.T) {
	d := process.New(process.Options{})
	game := "g-exec-chain"
	chain := []string{"/bin/sh", "-c", `exec /bin/sh -c 'exec /bin/sh -c "exec sleep 30"'`}
	for i := range 30 {
		id, _, err := d.Start(context.Background(), process.StartSpec{GameID: game, JobID: "1-0", Command: chain})
		require.NoError(t, err)
		found, err := d.Find(game, "")
		require.NoError(t, err)
		require.NoError(t, d.Stop(context.Background(), id, 5*time.Second))
		require.Len(t, found, 1, "attempt %d: Find missed the engine", i)
		assert.Equal(t, id, found[0].ContainerID)
	}
}
