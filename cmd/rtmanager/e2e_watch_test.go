package main

import (
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/runtimes/process"
)

// The built binary with the process runtime: an engine it started and
// that is then killed with SIGKILL is reported on runtime:events as
// engine_exited with exit code 137, once; a later stop job for the game is
// a replay.
func TestEndToEndKilledEngineIsReported(t *testing.T) {
	w := newWorld(t)
	profiles := writeEngines(t, `engines:
  demo:
    runtime: process
    command: ["python3", "-c", "import socket,os,time\ns=socket.socket()\ns.bind(('127.0.0.1',int(os.environ['PORT'])))\ns.listen(8)\nwhile True: time.sleep(1)"]
`)
	startBinary(t, "--redis-url", w.srv.URL(), "--runtime", "process", "--engines", profiles, "--stop-grace", "2s")
	id := w.addTo(t, startJobs, "game_id", "w1", "engine", "demo")
	r := w.resultFor(t, id)
	require.Equal(t, "success", r["outcome"], r["error_message"])
	pid, _, err := process.ParseID(r["container_id"])
	require.NoError(t, err)
	killed := time.Now()
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))

	var ev map[string]string
	require.Eventually(t, func() bool {
		es := w.entries(t, runtimejobs.RuntimeEventsChannelPath)
		if len(es) > 0 {
			ev = es[0]
		}
		return len(es) > 0
	}, 30*time.Second, 10*time.Millisecond, "no runtime event")
	t.Logf("engine_exited %s after the kill", time.Since(killed).Round(time.Millisecond))
	assert.Equal(t, "w1", ev["game_id"])
	assert.Equal(t, "engine_exited", ev["type"])
	assert.Equal(t, "137", ev["exit_code"])
	assert.Equal(t, r["container_id"], ev["container_id"])
	at, err := strconv.ParseInt(ev["at_ms"], 10, 64)
	require.NoError(t, err)
	assert.Positive(t, at)

	stop := w.addTo(t, jobs, "game_id", "w1", "reason", "game_finished")
	sr := w.resultFor(t, stop)
	assert.Equal(t, "success", sr["outcome"])
	assert.Equal(t, "replay_no_op", sr["error_code"])
	assert.Equal(t, "runtime already exited", sr["error_message"])
	assert.Len(t, w.entries(t, runtimejobs.RuntimeEventsChannelPath), 1)
}
