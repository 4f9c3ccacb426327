package main

import (
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

// --pprof-addr serves Go's profiles on a listener of its own (not on
// --http-addr), and --cpu-profile leaves a CPU profile of the run once
// rtmanager has shut down.
func TestProfilingFlags(t *testing.T) {
	w := newWorld(t)
	pprofAddr, err := testredis.FreeAddr()
	require.NoError(t, err)
	cpu := filepath.Join(t.TempDir(), "cpu.prof")
	p := startBinary(t, "--redis-url", w.srv.URL(), "--runtime", "none", "--pprof-addr", pprofAddr, "--cpu-profile", cpu)

	resp, err := http.Get("http://" + pprofAddr + "/debug/pprof/goroutine?debug=1")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "goroutine profile:")
	assert.NotEqual(t, http.StatusOK, p.get("/debug/pprof/"), "the profiles are not on --http-addr")

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		p.done <- err
		require.NoError(t, err, p.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("rtmanager did not stop after SIGTERM")
	}
	f, err := os.Open(cpu)
	require.NoError(t, err)
	defer f.Close()
	// A pprof profile is a gzipped protocol buffer whose string table names
	// its sample types.
	zr, err := gzip.NewReader(f)
	require.NoError(t, err, "--cpu-profile is gzipped")
	raw, err := io.ReadAll(zr)
	require.NoError(t, err)
	assert.Contains(t, string(raw), "nanoseconds")
	assert.Contains(t, string(raw), "cpu")
}

func TestPprofAddrMustBeHostPort(t *testing.T) {
	_, err := parseConfig([]string{"--pprof-addr", "6060"}, noEnv, io.Discard)
	var ue *usageError
	require.ErrorAs(t, err, &ue)
	assert.Contains(t, ue.msg, "--pprof-addr")
}
