package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testengine"
	"galaxy/rtmanager/internal/testredis"
)

// The built binary with --runtime docker against the real container engine
// (internal/testengine), behind a proxy that answers as an API-1.41 daemon.

// launchBinary starts the built rtmanager without waiting for /readyz; it
// is killed when the test ends.
func launchBinary(t *testing.T, args ...string) *proc {
	t.Helper()
	addr, err := testredis.FreeAddr()
	require.NoError(t, err)
	cmd := exec.Command(binary(t), append([]string{"--http-addr", addr}, args...)...)
	p := &proc{cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1), http: addr}
	cmd.Stderr = p.stderr
	cmd.Stdout = io.Discard
	require.NoError(t, cmd.Start())
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = <-p.done
		if t.Failed() {
			t.Logf("rtmanager stderr:\n%s", p.stderr.String())
		}
	})
	require.Eventually(t, func() bool { return p.get("/healthz") == http.StatusOK }, 20*time.Second, 20*time.Millisecond, "rtmanager never served /healthz: %s", p.stderr.String())
	return p
}

func (p *proc) body(path string) (int, string) {
	resp, err := http.Get("http://" + p.http + path)
	if err != nil {
		return 0, err.Error()
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, string(b)
}

// register records a container as the game's running runtime.
func (w *world) register(t *testing.T, c testengine.Container) {
	t.Helper()
	_, err := w.svc.Register(context.Background(), stopruntime.Record{GameID: c.Game, Runtime: stopruntime.RuntimeDocker, ContainerID: c.ID, EngineEndpoint: c.Addr})
	require.NoError(t, err)
}

// resultsByJob waits until every job has a result and nothing is pending,
// and returns the results of each job.
func (w *world) resultsByJob(t *testing.T, jobIDs ...string) map[string][]map[string]string {
	t.Helper()
	w.waitLen(t, results, int64(len(jobIDs)))
	require.Eventually(t, func() bool {
		pend, err := w.rdb.XPending(context.Background(), jobs, "rtmanager").Result()
		return err == nil && pend.Count == 0
	}, 30*time.Second, 20*time.Millisecond)
	out := map[string][]map[string]string{}
	for _, r := range w.entries(t, results) {
		out[r["job_id"]] = append(out[r["job_id"]], r)
	}
	return out
}

func stateOf(t *testing.T, e *testengine.Engine, id string) (running bool, exit int) {
	t.Helper()
	st, err := e.State(context.Background(), id)
	require.NoError(t, err)
	return st.Running, st.ExitCode
}

// Stop jobs against an API-1.41 daemon: each answered once, the containers
// (found by their game-id labels) stopped, a replay answered replay_no_op.
func TestEndToEndDockerRuntime(t *testing.T) {
	e := testengine.Require(t)
	w := newWorld(t)
	p141 := e.NewProxy(t, "1.41")
	specs := []testengine.Spec{
		{Game: "g-docker-1"},
		{Game: "g-docker-2", TermDelay: 300 * time.Millisecond},
		{Game: "g-docker-3", IgnoreTerm: true},
	}
	byGame := map[string]testengine.Container{}
	for _, s := range specs {
		c := e.MustRun(t, s)
		w.register(t, c)
		byGame[s.Game] = c
	}
	t0 := time.Now()
	startBinary(t, "--redis-url", w.srv.URL(), "--runtime", "docker", "--docker-host", p141.Host(), "--stop-grace", "2s")
	t.Logf("rtmanager ready in %s", time.Since(t0))

	t1 := time.Now()
	jobGame := map[string]string{}
	for _, s := range specs {
		jobGame[w.add(t, "game_id", s.Game, "reason", "game_finished")] = s.Game
	}
	ids := make([]string, 0, len(jobGame))
	for id := range jobGame {
		ids = append(ids, id)
	}
	got := w.resultsByJob(t, ids...)
	t.Logf("3 stop jobs answered in %s (one engine ignores SIGTERM, grace 2s)", time.Since(t1))
	for id, game := range jobGame {
		require.Len(t, got[id], 1, "job %s answered once", id)
		r := got[id][0]
		assert.Equal(t, "success", r["outcome"], "%v", r)
		assert.Equal(t, game, r["game_id"])
		// The container the result names is the one labelled with the game.
		list, err := e.Client().ContainerList(context.Background(), client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", testengine.GameLabel+"="+game)})
		require.NoError(t, err)
		require.Len(t, list.Items, 1)
		assert.Equal(t, list.Items[0].ID, r["container_id"])
		assert.Equal(t, byGame[game].Addr, r["engine_endpoint"])
		running, _ := stateOf(t, e, r["container_id"])
		assert.False(t, running, game)
	}
	_, exit := stateOf(t, e, byGame["g-docker-3"].ID)
	assert.Equal(t, 137, exit, "the SIGTERM-ignoring engine was killed after the grace period")

	replay := w.add(t, "game_id", "g-docker-1", "reason", "game_finished")
	got = w.resultsByJob(t, append(ids, replay)...)
	require.Len(t, got[replay], 1)
	assert.Equal(t, "replay_no_op", got[replay][0]["error_code"])

	assert.Empty(t, p141.RequestsWith("/v1.4"+"7"), "nothing above the daemon's version")
	stops := p141.RequestsWith("/stop")
	require.Len(t, stops, 3)
	for _, s := range stops {
		assert.True(t, strings.HasPrefix(s, "POST /v1.41/containers/"), s)
	}
}

// kill -9 of rtmanager while a stop is in progress; after the restart the
// stop is resumed and answered exactly once, and the container ends stopped.
func TestEndToEndDockerKill9MidStop(t *testing.T) {
	e := testengine.Require(t)
	w := newWorld(t)
	proxy := e.NewProxy(t, "")
	c := e.MustRun(t, testengine.Spec{Game: "g-kill9", IgnoreTerm: true})
	w.register(t, c)
	args := []string{"--redis-url", w.srv.URL(), "--runtime", "docker", "--docker-host", proxy.Host(),
		"--stop-grace", "5s", "--claim-idle", "1s", "--retry-backoff", "100ms"}
	p := startBinary(t, args...)
	job := w.add(t, "game_id", c.Game, "reason", "game_finished")
	// The daemon has the stop: kill -9 in the middle of its grace period.
	require.Eventually(t, func() bool { return len(proxy.RequestsWith("/stop")) == 1 }, 20*time.Second, 5*time.Millisecond)
	t0 := time.Now()
	require.NoError(t, p.cmd.Process.Kill())
	_ = <-p.done
	p.done <- nil
	// Podman goes on with the stop the dead client asked for ("stopping",
	// which its inspect reports as not running); the container has not
	// exited yet.
	st, err := e.State(context.Background(), c.ID)
	require.NoError(t, err)
	require.NotEqual(t, "exited", string(st.Status), "killed before the engine was")
	rec, ok, err := w.svc.Get(context.Background(), c.Game)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "stopping", rec.Status)
	t.Logf("engine %s at the kill -9", st.Status)
	n, err := w.rdb.XLen(context.Background(), results).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "no result before the restart")

	startBinary(t, args...)
	got := w.resultsByJob(t, job)
	t.Logf("resumed stop answered %s after the kill -9", time.Since(t0))
	require.Len(t, got[job], 1, "answered exactly once")
	assert.Equal(t, "success", got[job][0]["outcome"], "%v", got[job][0])
	assert.Equal(t, c.ID, got[job][0]["container_id"])
	running, exit := stateOf(t, e, c.ID)
	assert.False(t, running)
	assert.Equal(t, 137, exit)
	rec, _, err = w.svc.Get(context.Background(), c.Game)
	require.NoError(t, err)
	assert.Equal(t, "stopped", rec.Status)
	// Nothing more arrives later.
	assert.Never(t, func() bool {
		n, _ := w.rdb.XLen(context.Background(), results).Result()
		return n != 1
	}, 1500*time.Millisecond, 100*time.Millisecond)
	assert.GreaterOrEqual(t, len(proxy.RequestsWith("/stop")), 2, "the stop was sent again after the restart")
}

// A daemon unreachable at start-up: rtmanager runs, is not ready and says
// why, retries its stop; when the daemon comes back it is ready and the
// job is answered once.
func TestEndToEndDockerDaemonOutage(t *testing.T) {
	e := testengine.Require(t)
	w := newWorld(t)
	proxy := e.NewProxy(t, "")
	c := e.MustRun(t, testengine.Spec{Game: "g-outage"})
	w.register(t, c)
	proxy.Down()
	p := launchBinary(t, "--redis-url", w.srv.URL(), "--runtime", "docker", "--docker-host", proxy.Host(),
		"--stop-grace", "2s", "--max-deliveries", "1000", "--retry-backoff", "50ms")
	// Until the first daemon check has run, /readyz says "starting".
	var code int
	var body string
	require.Eventually(t, func() bool {
		code, body = p.body("/readyz")
		return !strings.Contains(body, "starting")
	}, 20*time.Second, 20*time.Millisecond)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Contains(t, body, "docker daemon at "+proxy.Host()+" unreachable")
	job := w.add(t, "game_id", c.Game, "reason", "lobby_cancelled")
	require.Eventually(t, func() bool { return strings.Contains(p.stderr.String(), "transient runtime failure") }, 20*time.Second, 20*time.Millisecond)
	running, _ := stateOf(t, e, c.ID)
	assert.True(t, running)

	require.NoError(t, proxy.Up())
	require.Eventually(t, func() bool { return p.get("/readyz") == http.StatusOK }, 20*time.Second, 20*time.Millisecond)
	got := w.resultsByJob(t, job)
	require.Len(t, got[job], 1)
	assert.Equal(t, "success", got[job][0]["outcome"])
	running, _ = stateOf(t, e, c.ID)
	assert.False(t, running)

	// And again later: the daemon goes away, /readyz follows, and back.
	proxy.Down()
	require.Eventually(t, func() bool { return p.get("/readyz") == http.StatusServiceUnavailable }, 20*time.Second, 20*time.Millisecond)
	require.NoError(t, proxy.Up())
	require.Eventually(t, func() bool { return p.get("/readyz") == http.StatusOK }, 20*time.Second, 20*time.Millisecond)
}

// API versions the driver cannot use stop start-up with exit code 2 and
// one line: configured by flag or DOCKER_API_VERSION, or the daemon's.
func TestEndToEndDockerUnsupportedVersion(t *testing.T) {
	e := testengine.Require(t)
	w := newWorld(t)
	old := e.NewProxy(t, "1.39")
	cases := map[string]struct {
		args []string
		env  string
		want string
	}{
		"flag":   {[]string{"--docker-host", e.Host(), "--docker-api-version", "1.39"}, "", "1.39"},
		"env":    {[]string{"--docker-host", e.Host()}, "DOCKER_API_VERSION=1.30", "DOCKER_API_VERSION=1.30"},
		"daemon": {[]string{"--docker-host", old.Host()}, "", "speaks API 1.39"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(binary(t), append([]string{"--http-addr", "", "--redis-url", w.srv.URL(), "--runtime", "docker"}, tc.args...)...)
			cmd.Env = os.Environ()
			if tc.env != "" {
				cmd.Env = append(cmd.Env, tc.env)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, stderr.String())
			assert.Equal(t, 2, ee.ExitCode())
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			assert.True(t, strings.HasPrefix(last, "rtmanager: docker runtime: "), last)
			assert.Contains(t, last, tc.want)
			assert.Contains(t, last, "1.40")
		})
	}
}

func TestDockerAPIVersionFlag(t *testing.T) {
	env := map[string]string{"RTMANAGER_DOCKER_API_VERSION": "1.41"}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "1.41", cfg.DockerAPI)
	cfg, err = parseConfig([]string{"--docker-api-version", "1.43"}, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "1.43", cfg.DockerAPI)
	var help bytes.Buffer
	_, err = parseConfig([]string{"--help"}, func(string) string { return "" }, &help)
	require.Error(t, err)
	assert.Contains(t, help.String(), "--docker-api-version (RTMANAGER_DOCKER_API_VERSION)")
}
