package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeEngines(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "engines.yaml")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// --engines (or RTMANAGER_ENGINES) is read and checked at start-up.
func TestEnginesFlag(t *testing.T) {
	p := writeEngines(t, "engines:\n  demo:\n    runtime: process\n    command: [sleep, '60']\n")
	cfg, err := parseConfig(nil, func(k string) string {
		if k == "RTMANAGER_ENGINES" {
			return p
		}
		return ""
	}, io.Discard)
	require.NoError(t, err)
	_, ok := cfg.Engines.Get("demo")
	assert.True(t, ok)
	assert.Equal(t, 30*time.Second, cfg.StartTimeout)

	cfg, err = parseConfig([]string{"--start-timeout", "5s"}, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	assert.Nil(t, cfg.Engines)
	assert.Equal(t, 5*time.Second, cfg.StartTimeout)
}

// A bad profile file exits 2 before anything runs, naming the line and the
// field at fault.
func TestBadEnginesFileExits2(t *testing.T) {
	p := writeEngines(t, "engines:\n  chess:\n    runtime: docker\n    image: x\n    port: 70000\n")
	code, stderr := runToExit(t, 30*time.Second, "--engines", p, "--redis-url", "redis://127.0.0.1:1/0", "--http-addr", "")
	wantUsageExit(t, code, stderr, "invalid --engines: "+p+":5: engines.chess.port: want a port number 1 to 65535")

	code, stderr = runToExit(t, 30*time.Second, "--engines", filepath.Join(t.TempDir(), "none.yaml"), "--http-addr", "")
	wantUsageExit(t, code, stderr, "invalid --engines: read engine profiles")
}
