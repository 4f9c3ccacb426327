package docker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes"
	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/testengine"
)

// A container killed through the engine: Inspect reports its exit code,
// and the daemon's die event names it.
func TestInspectAndExitNoticeOfAKilledContainer(t *testing.T) {
	t.Parallel()
	e, d := engineDriver(t)
	c := e.MustRun(t, testengine.Spec{Game: "g-watch-kill"})
	st, err := d.Inspect(context.Background(), c.ID)
	require.NoError(t, err)
	assert.True(t, st.Running)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var seen []string
	codes := map[string]int64{}
	go d.NotifyExits(ctx, func(id string, st *runtimes.State) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, id)
		if st != nil && st.ExitCode != nil {
			codes[id] = *st.ExitCode
		}
	})
	// The event stream is open once a harmless event comes through: wait
	// for the notice of a container made for it.
	probe := e.MustRun(t, testengine.Spec{Game: "g-watch-probe"})
	require.Eventually(t, func() bool {
		_, _ = e.Client().ContainerKill(context.Background(), probe.ID, client.ContainerKillOptions{Signal: "KILL"})
		mu.Lock()
		defer mu.Unlock()
		for _, id := range seen {
			if id == probe.ID {
				return true
			}
		}
		return false
	}, 30*time.Second, 200*time.Millisecond, "the die event stream")

	_, err = e.Client().ContainerKill(context.Background(), c.ID, client.ContainerKillOptions{Signal: "KILL"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range seen {
			if id == c.ID {
				return true
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "no die notice for the killed container")
	mu.Lock()
	assert.Equal(t, int64(137), codes[c.ID], "the die notice carries the exit code")
	mu.Unlock()
	st, err = d.Inspect(context.Background(), c.ID)
	require.NoError(t, err)
	assert.False(t, st.Running)
	require.NotNil(t, st.ExitCode)
	assert.Equal(t, int64(137), *st.ExitCode)
	assert.False(t, st.OOMKilled)

	require.NoError(t, e.Remove(context.Background(), c.ID))
	st, err = d.Inspect(context.Background(), c.ID)
	require.NoError(t, err)
	assert.False(t, st.Running)
	assert.Nil(t, st.ExitCode)
	assert.Contains(t, st.Reason, "no longer exists")
}

// A container over its memory limit is killed by the kernel (exit 137).
// Podman on these hosts (cgroups v1, cgroupfs) does not report OOMKilled;
// Docker does, and the fake daemon below gives the driver that answer.
func TestInspectOfAContainerOverItsMemoryLimit(t *testing.T) {
	t.Parallel()
	e, d := engineDriver(t)
	c := e.MustRun(t, testengine.Spec{Game: "g-watch-oom", Memory: 16 << 20, AllocMB: 64})
	var last runtimes.State
	require.Eventually(t, func() bool {
		s, err := d.Inspect(context.Background(), c.ID)
		require.NoError(t, err)
		last = s
		return !s.Running
	}, 30*time.Second, 50*time.Millisecond, "the container was not killed")
	require.NotNil(t, last.ExitCode)
	assert.Equal(t, int64(137), *last.ExitCode)
	t.Logf("engine's answer: %+v", last)
}

// What Docker answers for a container the kernel killed for lack of
// memory: OOMKilled, carried into the state and its reason.
func TestInspectReportsOOMKilled(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			w.Header().Set("Api-Version", "1.47")
			_, _ = w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/containers/c1/json"):
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"Id":"c1","State":{"Status":"exited","Running":false,"OOMKilled":true,"ExitCode":137}}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	d := newDriver(t, docker.Options{Host: "tcp://" + strings.TrimPrefix(srv.URL, "http://")})
	st, err := d.Inspect(context.Background(), "c1")
	require.NoError(t, err)
	assert.False(t, st.Running)
	assert.True(t, st.OOMKilled)
	require.NotNil(t, st.ExitCode)
	assert.Equal(t, int64(137), *st.ExitCode)
	assert.Contains(t, st.Reason, "killed for lack of memory")
}
