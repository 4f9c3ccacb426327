package docker_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/stopruntime"
)

type request struct{ method, path, query string }

// engine speaks the one Engine API endpoint the driver uses,
// POST /v1.47/containers/{id}/stop?t=N, with the documented status codes:
// 204 stopped, 304 already stopped, 404 no such container, 500 server error.
type engine struct {
	mu   sync.Mutex
	reqs []request
}

func (e *engine) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	e.reqs = append(e.reqs, request{r.Method, r.URL.Path, r.URL.RawQuery})
	e.mu.Unlock()
	id, ok := strings.CutPrefix(r.URL.Path, "/v1.47/containers/")
	id, ok2 := strings.CutSuffix(id, "/stop")
	if r.Method != http.MethodPost || !ok || !ok2 {
		http.Error(w, `{"message":"page not found"}`, http.StatusNotFound)
		return
	}
	writeErr := func(code int, msg string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"message":"` + msg + `"}`))
	}
	switch id {
	case "running":
		w.WriteHeader(http.StatusNoContent)
	case "stopped":
		w.WriteHeader(http.StatusNotModified)
	case "missing":
		writeErr(http.StatusNotFound, "No such container: missing")
	case "broken":
		writeErr(http.StatusInternalServerError, "cannot stop container: broken: permission denied")
	case "unavailable":
		writeErr(http.StatusServiceUnavailable, "daemon is shutting down")
	case "slow":
		<-r.Context().Done()
	default:
		writeErr(http.StatusBadRequest, "unexpected id")
	}
}

func (e *engine) requests() []request {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]request(nil), e.reqs...)
}

func newDriver(t *testing.T, host string) *docker.Driver {
	t.Helper()
	d, err := docker.New(docker.Options{Host: host})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func startEngine(t *testing.T) (*engine, *docker.Driver) {
	t.Helper()
	e := &engine{}
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return e, newDriver(t, "tcp://"+srv.Listener.Addr().String())
}

func TestStopRequestShape(t *testing.T) {
	e, d := startEngine(t)
	require.NoError(t, d.Stop(context.Background(), "running", 10*time.Second))
	// Grace is rounded up to whole seconds.
	require.NoError(t, d.Stop(context.Background(), "running", 1500*time.Millisecond))
	require.NoError(t, d.Stop(context.Background(), "running", 0))
	assert.Equal(t, []request{
		{http.MethodPost, "/v1.47/containers/running/stop", "t=10"},
		{http.MethodPost, "/v1.47/containers/running/stop", "t=2"},
		{http.MethodPost, "/v1.47/containers/running/stop", "t=0"},
	}, e.requests())
}

func TestStatusMapping(t *testing.T) {
	_, d := startEngine(t)
	ctx := context.Background()

	// 304: already stopped is a success.
	require.NoError(t, d.Stop(ctx, "stopped", time.Second))

	err := d.Stop(ctx, "missing", time.Second)
	require.ErrorIs(t, err, stopruntime.ErrGone)
	assert.NotErrorIs(t, err, stopruntime.ErrTransient)

	err = d.Stop(ctx, "broken", time.Second)
	require.Error(t, err)
	assert.NotErrorIs(t, err, stopruntime.ErrGone)
	assert.NotErrorIs(t, err, stopruntime.ErrTransient)
	assert.Contains(t, err.Error(), "permission denied")

	require.ErrorIs(t, d.Stop(ctx, "unavailable", time.Second), stopruntime.ErrTransient)
}

func TestTimeoutIsTransient(t *testing.T) {
	_, d := startEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := d.Stop(ctx, "slow", time.Second)
	require.ErrorIs(t, err, stopruntime.ErrTransient)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestUnreachableDaemonIsTransient(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close() // nothing listens there now
	d := newDriver(t, "tcp://"+addr)
	require.ErrorIs(t, d.Stop(context.Background(), "running", time.Second), stopruntime.ErrTransient)

	d = newDriver(t, "unix://"+t.TempDir()+"/no-such.sock")
	require.ErrorIs(t, d.Stop(context.Background(), "running", time.Second), stopruntime.ErrTransient)
}

func TestEmptyIDIsPermanent(t *testing.T) {
	e, d := startEngine(t)
	err := d.Stop(context.Background(), "", time.Second)
	require.Error(t, err)
	assert.NotErrorIs(t, err, stopruntime.ErrTransient)
	assert.Empty(t, e.requests())
}

// TestRealDaemon talks to a real Docker daemon when one is reachable: a
// container that does not exist must come back as gone.
func TestRealDaemon(t *testing.T) {
	host := os.Getenv("DOCKER_HOST")
	if host == "" {
		if _, err := os.Stat("/var/run/docker.sock"); err != nil {
			t.Skip("no Docker daemon: DOCKER_HOST is unset and /var/run/docker.sock does not exist")
		}
		host = "unix:///var/run/docker.sock"
	}
	d := newDriver(t, host)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := d.Stop(ctx, "rtmanager-test-no-such-container-4f1c9a0e", time.Second)
	if errors.Is(err, stopruntime.ErrTransient) {
		t.Skipf("Docker daemon at %s not reachable: %v", host, err)
	}
	require.ErrorIs(t, err, stopruntime.ErrGone)
}
