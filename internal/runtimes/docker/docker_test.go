package docker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/stopruntime"
)

// Only what a real engine cannot produce on demand is faked here: answers
// that mean "try again" (429, 502, 503, 504) and a 500. Everything else is
// tested against the real engine (engine_test.go).

// fakeDaemon answers /_ping as an API-1.41 daemon and every stop with the
// status named by the container id.
func fakeDaemon(t *testing.T) *docker.Driver {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/_ping" {
			w.Header().Set("Api-Version", "1.41")
			_, _ = w.Write([]byte("OK"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case strings.HasSuffix(r.URL.Path, "/429/stop"):
			w.WriteHeader(http.StatusTooManyRequests)
		case strings.HasSuffix(r.URL.Path, "/500/stop"):
			w.WriteHeader(http.StatusInternalServerError)
		case strings.HasSuffix(r.URL.Path, "/502/stop"):
			w.WriteHeader(http.StatusBadGateway)
		case strings.HasSuffix(r.URL.Path, "/503/stop"):
			w.WriteHeader(http.StatusServiceUnavailable)
		case strings.HasSuffix(r.URL.Path, "/504/stop"):
			w.WriteHeader(http.StatusGatewayTimeout)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
		_, _ = w.Write([]byte(`{"message":"fake daemon answer"}`))
	}))
	t.Cleanup(srv.Close)
	return newDriver(t, docker.Options{Host: "tcp://" + srv.Listener.Addr().String()})
}

func newDriver(t *testing.T, opts docker.Options) *docker.Driver {
	t.Helper()
	d, err := docker.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func TestTryAgainAnswersAreTransient(t *testing.T) {
	d := fakeDaemon(t)
	for _, code := range []string{"429", "502", "503", "504"} {
		err := d.Stop(context.Background(), code, time.Second)
		require.ErrorIs(t, err, stopruntime.ErrTransient, code)
		assert.NotErrorIs(t, err, stopruntime.ErrGone, code)
	}
}

func TestServerErrorIsPermanent(t *testing.T) {
	d := fakeDaemon(t)
	err := d.Stop(context.Background(), "500", time.Second)
	require.Error(t, err)
	require.NotErrorIs(t, err, stopruntime.ErrTransient)
	require.NotErrorIs(t, err, stopruntime.ErrGone)
	assert.Contains(t, err.Error(), "fake daemon answer")
}

func TestEmptyIDIsPermanent(t *testing.T) {
	d := newDriver(t, docker.Options{Host: "unix:///nonexistent/docker.sock"})
	err := d.Stop(context.Background(), "", time.Second)
	require.Error(t, err)
	assert.NotErrorIs(t, err, stopruntime.ErrTransient)
}

func TestNoDaemonIsTransient(t *testing.T) {
	d := newDriver(t, docker.Options{Host: "unix://" + t.TempDir() + "/no-such.sock"})
	err := d.Stop(context.Background(), "c1", time.Second)
	require.ErrorIs(t, err, stopruntime.ErrTransient)
	_, err = d.Check(context.Background())
	require.ErrorIs(t, err, stopruntime.ErrTransient)
	assert.Contains(t, err.Error(), "unreachable")
}

func TestConfiguredVersionBelowMinimumIsRefused(t *testing.T) {
	for _, v := range []string{"1.39", "1.24", "abc", "1", "1.4x"} {
		_, err := docker.New(docker.Options{Host: "unix:///x.sock", APIVersion: v})
		require.ErrorIs(t, err, docker.ErrUnsupportedAPIVersion, v)
	}
	t.Setenv(docker.EnvAPIVersion, "1.30")
	_, err := docker.New(docker.Options{Host: "unix:///x.sock"})
	require.ErrorIs(t, err, docker.ErrUnsupportedAPIVersion)
	assert.Contains(t, err.Error(), "DOCKER_API_VERSION=1.30")
	// The flag wins over the environment.
	_, err = docker.New(docker.Options{Host: "unix:///x.sock", APIVersion: "1.41"})
	require.NoError(t, err)
	_, err = docker.New(docker.Options{Host: "unix:///x.sock", APIVersion: "1.40"})
	require.NoError(t, err)
}

func TestMinimumIsNotBelowTheClientLibrarys(t *testing.T) {
	assert.False(t, versionLess(docker.MinAPIVersion, clientMinAPIVersion()), "MinAPIVersion %s below the client's %s", docker.MinAPIVersion, clientMinAPIVersion())
}
