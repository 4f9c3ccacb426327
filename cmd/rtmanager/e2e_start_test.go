package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/runtimes/process"
)

const (
	startJobs = runtimejobs.StartJobsChannelPath
	startDead = runtimejobs.StartJobsDeadChannelPath
)

func (w *world) addTo(t *testing.T, stream string, values ...string) string {
	id, err := w.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: stream, Values: values}).Result()
	require.NoError(t, err)
	return id
}

// resultFor waits for the result of job id on runtime:job_results.
func (w *world) resultFor(t *testing.T, id string) map[string]string {
	t.Helper()
	var got map[string]string
	require.Eventually(t, func() bool {
		for _, e := range w.entries(t, results) {
			if e["job_id"] == id {
				got = e
				return true
			}
		}
		return false
	}, 60*time.Second, 20*time.Millisecond, "no result for job %s", id)
	return got
}

// The built binary with --engines and the process runtime: a start job
// starts the profile's engine (reachable at the answered endpoint), a stop
// job stops it; a job naming a path or an unknown profile is invalid_job,
// dead-lettered, and nothing runs.
func TestEndToEndStartJobs(t *testing.T) {
	w := newWorld(t)
	profiles := writeEngines(t, `engines:
  demo:
    runtime: process
    command: ["python3", "-c", "import socket,os,time\ns=socket.socket()\ns.bind(('127.0.0.1',int(os.environ['PORT'])))\ns.listen(8)\nwhile True: time.sleep(1)"]
`)
	p := startBinary(t, "--redis-url", w.srv.URL(), "--runtime", "process", "--engines", profiles, "--stop-grace", "2s", "--start-timeout", "30s")
	drv := process.New(process.Options{})
	t.Cleanup(func() {
		f, _ := drv.Find("s1", "")
		for _, r := range f {
			_ = drv.Stop(context.Background(), r.ContainerID, time.Second)
		}
	})

	id := w.addTo(t, startJobs, "game_id", "s1", "engine", "demo", "requested_at_ms", "1764160000000")
	r := w.resultFor(t, id)
	require.Equal(t, "success", r["outcome"], r["error_message"])
	assert.Equal(t, "start", r["operation"])
	c, err := net.DialTimeout("tcp", r["engine_endpoint"], 2*time.Second)
	require.NoError(t, err, "the engine accepts connections at the answered endpoint")
	c.Close()
	live, err := drv.Find("s1", "")
	require.NoError(t, err)
	require.Len(t, live, 1)
	assert.Equal(t, r["container_id"], live[0].ContainerID)

	again := w.addTo(t, startJobs, "game_id", "s1", "engine", "demo")
	r2 := w.resultFor(t, again)
	assert.Equal(t, "replay_no_op", r2["error_code"])
	assert.Equal(t, r["container_id"], r2["container_id"])
	assert.Equal(t, r["engine_endpoint"], r2["engine_endpoint"])

	stop := w.addTo(t, jobs, "game_id", "s1", "reason", "game_finished")
	rs := w.resultFor(t, stop)
	assert.Equal(t, "success", rs["outcome"])
	assert.Equal(t, "stop", rs["operation"])
	live, err = drv.Find("s1", "")
	require.NoError(t, err)
	assert.Empty(t, live)

	for _, engine := range []string{"../../bin/sh", "go"} {
		bad := w.addTo(t, startJobs, "game_id", "s2", "engine", engine)
		rb := w.resultFor(t, bad)
		assert.Equal(t, "failure", rb["outcome"], engine)
		assert.Equal(t, "invalid_job", rb["error_code"], engine)
	}
	w.waitLen(t, startDead, 2)
	for _, dl := range w.entries(t, startDead) {
		assert.Equal(t, "invalid", dl["dead_reason"])
	}
	live, err = drv.Find("s2", "")
	require.NoError(t, err)
	assert.Empty(t, live, "nothing runs for an invalid start job")
	n, err := w.rdb.Exists(context.Background(), "rtmanager:runtime:{s2}").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "nothing is recorded either")

	resp, err := http.Get("http://" + p.http + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Contains(t, string(body), `rtmanager_job_results_total{error_code="",operation="start",outcome="success"} 1`)
	assert.Contains(t, string(body), `rtmanager_job_results_total{error_code="invalid_job",operation="start",outcome="failure"} 2`)
	assert.Contains(t, p.stderr.String(), `"msg":"start job processed"`)
}
