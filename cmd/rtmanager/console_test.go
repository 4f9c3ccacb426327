package main

import (
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The console is served at / on --http-addr next to the unchanged
// /metrics, /healthz and /readyz; its replays are refused without a token
// and it reads the process's own readiness.
func TestConsoleOnTheHTTPListener(t *testing.T) {
	w := newWorld(t)
	p := startBinary(t, "--redis-url", w.srv.URL(), "--runtime", "none")
	code, body := p.body("/")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "rtmanager console")
	assert.Contains(t, body, "/readyz: ready")
	assert.Contains(t, body, "read-only")
	assert.NotContains(t, body, w.srv.Addr(), "no Redis address on a page")
	code, body = p.body("/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
	code, body = p.body("/readyz")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ready\n", body)
	code, body = p.body("/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "rtmanager_pending_entries")

	res, err := http.PostForm("http://"+p.http+"/dead/replay", url.Values{"id": {"1-0"}, "confirm": {"yes"}})
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
}

func TestConsoleTokenFromTheEnvironmentAllowsReplays(t *testing.T) {
	w := newWorld(t)
	p := startBinaryEnv(t, []string{"RTMANAGER_CONSOLE_TOKEN=tok-123"}, "--redis-url", w.srv.URL(), "--runtime", "none")
	req, err := http.NewRequest(http.MethodPost, "http://"+p.http+"/dead/replay", strings.NewReader("id=1-0&confirm=yes"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer tok-123")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	// Allowed, and the letter is not there: a conflict, not a refusal.
	assert.Equal(t, http.StatusConflict, res.StatusCode)
	assert.NotContains(t, p.stderr.String(), "tok-123", "the token is never logged")
}

func TestConsoleCanBeTurnedOff(t *testing.T) {
	w := newWorld(t)
	p := startBinary(t, "--redis-url", w.srv.URL(), "--runtime", "none", "--console=false")
	assert.Equal(t, http.StatusNotFound, p.get("/"))
	assert.Equal(t, http.StatusNotFound, p.get("/dead"))
	assert.Equal(t, http.StatusOK, p.get("/metrics"))
	assert.Equal(t, http.StatusOK, p.get("/healthz"))
	require.Eventually(t, func() bool { return p.get("/readyz") == http.StatusOK }, 10*time.Second, 20*time.Millisecond)
}

// An open live results stream does not hold up a shutdown: rtmanager exits
// well within --shutdown-timeout.
func TestShutdownEndsLiveConsoleStreams(t *testing.T) {
	w := newWorld(t)
	p := startBinary(t, "--redis-url", w.srv.URL(), "--runtime", "none", "--shutdown-timeout", "60s")
	res, err := http.Get("http://" + p.http + "/jobs/live?after=0-0")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	t0 := time.Now()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(t, err)
		p.done <- err // for the cleanup's wait
	case <-time.After(30 * time.Second):
		t.Fatal("rtmanager did not exit within 30s of SIGTERM with a live stream open")
	}
	assert.Less(t, time.Since(t0), 30*time.Second)
}

// With sharded keys the console is served too, and reads every shard: a
// stop job on one shard's stream shows in the overview's totals.
func TestConsoleWithShards(t *testing.T) {
	w := newWorld(t)
	p := startBinary(t, "--redis-url", w.srv.URL(), "--runtime", "none", "--shards", "4")
	code, body := p.body("/")
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, "Totals over 4 shards")
	assert.Contains(t, body, "runtime:{shard}:stop_jobs")
}
