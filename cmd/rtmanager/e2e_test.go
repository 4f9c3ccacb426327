package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/contractschema"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/runtimes/none"
	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

const (
	jobs    = runtimejobs.StopJobsChannelPath
	results = runtimejobs.JobResultsChannelPath
	dead    = runtimejobs.StopJobsDeadChannelPath
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds cmd/rtmanager once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rtmanager-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "rtmanager")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	require.NoError(t, buildErr)
	return binPath
}

type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
	http   string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startBinary runs the built rtmanager with args; it is stopped when the
// test ends.
func startBinary(t *testing.T, args ...string) *proc {
	t.Helper()
	return startBinaryEnv(t, nil, args...)
}

// startBinaryEnv is startBinary with env added to the environment.
func startBinaryEnv(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	addr, err := testredis.FreeAddr()
	require.NoError(t, err)
	cmd := exec.Command(binary(t), append([]string{"--http-addr", addr}, args...)...)
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
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
	require.Eventually(t, func() bool { return p.get("/readyz") == http.StatusOK }, 20*time.Second, 20*time.Millisecond, "rtmanager never became ready: %s", p.stderr.String())
	return p
}

func (p *proc) get(path string) int {
	resp, err := http.Get("http://" + p.http + path)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

type world struct {
	srv     *testredis.Server
	rdb     *redis.Client
	svc     *stopruntime.Service
	doc     *api.Document
	schemas *contractschema.Validator
}

func newWorld(t *testing.T, opts ...testredis.Options) *world {
	srv := testredis.Start(t, opts...)
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	svc, err := stopruntime.New(runtimestore.New(rdb, runtimestore.Options{}), map[string]stopruntime.Driver{"none": none.Driver{}}, stopruntime.Options{})
	require.NoError(t, err)
	doc, err := api.Load()
	require.NoError(t, err)
	schemas, err := contractschema.New(doc)
	require.NoError(t, err)
	return &world{srv: srv, rdb: rdb, svc: svc, doc: doc, schemas: schemas}
}

func (w *world) add(t *testing.T, values ...string) string {
	id, err := w.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: jobs, Values: values}).Result()
	require.NoError(t, err)
	return id
}

// entries reads a stream, each entry checked against the contract.
func (w *world) entries(t *testing.T, stream string) []map[string]string {
	msgs, err := w.rdb.XRange(context.Background(), stream, "-", "+").Result()
	require.NoError(t, err)
	ch, _ := w.doc.ChannelByAddress(stream)
	out := make([]map[string]string, 0, len(msgs))
	for _, m := range msgs {
		payload, err := redisstream.FieldsToPayload(ch, m.Values)
		require.NoError(t, err)
		var typed map[string]any
		require.NoError(t, json.Unmarshal(payload, &typed))
		for k, v := range m.Values {
			if _, ok := typed[k]; !ok {
				typed[k] = v
			}
		}
		require.NoError(t, w.schemas.Validate(stream, typed), "%s entry %s", stream, m.ID)
		vals := map[string]string{}
		for k, v := range m.Values {
			vals[k] = v.(string)
		}
		out = append(out, vals)
	}
	return out
}

func (w *world) waitLen(t *testing.T, stream string, n int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		l, _ := w.rdb.XLen(context.Background(), stream).Result()
		return l >= n
	}, 30*time.Second, 10*time.Millisecond, "waiting for %d entries on %s", n, stream)
}

// The built binary with the process runtime against a real redis-server,
// results read back by the generated UserController.
func TestEndToEndProcessRuntime(t *testing.T) {
	w := newWorld(t)
	sleeper := exec.Command("sleep", "300")
	sleeper.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, sleeper.Start())
	exited := make(chan struct{})
	go func() { _ = sleeper.Wait(); close(exited) }()
	t.Cleanup(func() { _ = sleeper.Process.Kill() })
	id, err := process.IDForPID(sleeper.Process.Pid)
	require.NoError(t, err)
	_, err = w.svc.Register(context.Background(), stopruntime.Record{GameID: "g1", Runtime: "process", ContainerID: id, EngineEndpoint: "127.0.0.1:7001"})
	require.NoError(t, err)

	p := startBinary(t, "--redis-url", w.srv.URL(), "--runtime", "process", "--stop-grace", "2s", "--workers", "4")

	ub, err := redisstream.New(w.rdb, redisstream.Options{Contract: w.doc, Block: 100 * time.Millisecond})
	require.NoError(t, err)
	user, err := runtimejobs.NewUserController(ub)
	require.NoError(t, err)
	defer user.Close(context.Background())
	got := make(chan runtimejobs.RuntimeJobResultSchema, 10)
	require.NoError(t, user.SubscribeToSendJobResultOperation(context.Background(), func(_ context.Context, msg runtimejobs.RuntimeJobResultMessage) error {
		got <- msg.Payload
		return nil
	}))
	next := func() runtimejobs.RuntimeJobResultSchema {
		select {
		case r := <-got:
			return r
		case <-time.After(20 * time.Second):
			t.Fatalf("no result; rtmanager stderr:\n%s", p.stderr.String())
		}
		return runtimejobs.RuntimeJobResultSchema{}
	}

	first := w.add(t, "game_id", "g1", "reason", "game_finished")
	r := next()
	assert.Equal(t, first, r.JobId)
	assert.Equal(t, "success", r.Outcome)
	assert.Equal(t, id, r.ContainerId)
	assert.Equal(t, "127.0.0.1:7001", r.EngineEndpoint)
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Fatal("the process is still running")
	}

	w.add(t, "game_id", "g1", "reason", "game_finished")
	r = next()
	assert.Equal(t, "success", r.Outcome)
	assert.Equal(t, "replay_no_op", r.ErrorCode)

	w.add(t, "game_id", "unknown", "reason", "lobby_cancelled")
	r = next()
	assert.Equal(t, "failure", r.Outcome)
	assert.Equal(t, "not_found", r.ErrorCode)

	bad := w.add(t, "game_id", "g1", "reason", "holiday")
	r = next()
	assert.Equal(t, bad, r.JobId)
	assert.Equal(t, "invalid_job", r.ErrorCode)
	w.waitLen(t, dead, 1)
	dl := w.entries(t, dead)
	assert.Equal(t, bad, dl[0]["original_id"])
	assert.Equal(t, "invalid", dl[0]["dead_reason"])
	assert.Len(t, w.entries(t, results), 4)

	// Metrics count what happened.
	resp, err := http.Get("http://" + p.http + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Contains(t, string(body), `rtmanager_job_results_total{error_code="replay_no_op",operation="stop",outcome="success"} 1`)
	assert.Contains(t, string(body), `rtmanager_dead_letters_total{reason="invalid",stream="runtime:stop_jobs"} 1`)
	assert.Contains(t, string(body), `rtmanager_pending_entries{group="rtmanager",stream="runtime:stop_jobs"} 0`)
	assert.Equal(t, http.StatusOK, p.get("/healthz"))

	// One log line per job, with its ids.
	assert.Contains(t, p.stderr.String(), `"msg":"stop job processed"`)
	assert.Contains(t, p.stderr.String(), `"job_id":"`+first+`"`)
}

// A runtime that keeps failing is retried --max-deliveries times, then
// answered runtime_unavailable and dead-lettered.
func TestEndToEndRetriesRunOut(t *testing.T) {
	w := newWorld(t)
	_, err := w.svc.Register(context.Background(), stopruntime.Record{GameID: "g1", Runtime: "docker", ContainerID: "abc", EngineEndpoint: "h:1"})
	require.NoError(t, err)
	launchBinary(t, "--redis-url", w.srv.URL(), "--runtime", "docker", "--docker-host", "tcp://127.0.0.1:1",
		"--max-deliveries", "3", "--retry-backoff", "20ms")
	id := w.add(t, "game_id", "g1", "reason", "game_finished")
	w.waitLen(t, results, 1)
	w.waitLen(t, dead, 1)
	res := w.entries(t, results)
	require.Len(t, res, 1)
	assert.Equal(t, id, res[0]["job_id"])
	assert.Equal(t, "failure", res[0]["outcome"])
	assert.Equal(t, "runtime_unavailable", res[0]["error_code"])
	dl := w.entries(t, dead)
	assert.Equal(t, "max_deliveries", dl[0]["dead_reason"])
	assert.Equal(t, "3", dl[0]["delivery_count"])
}

// SIGTERM with jobs in flight loses none: they finish, or stay pending and
// are answered after the next start; each exactly once.
func TestEndToEndSIGTERMLosesNothing(t *testing.T) {
	w := newWorld(t)
	const games = 40
	for i := 0; i < games; i++ {
		_, err := w.svc.Register(context.Background(), stopruntime.Record{GameID: fmt.Sprintf("g%d", i), Runtime: "none"})
		require.NoError(t, err)
	}
	args := []string{"--redis-url", w.srv.URL(), "--runtime", "none", "--workers", "4", "--claim-idle", "1s"}
	p := startBinary(t, args...)
	ids := map[string]bool{}
	for round := 0; round < 5; round++ {
		for i := 0; i < games; i++ {
			ids[w.add(t, "game_id", fmt.Sprintf("g%d", i), "reason", "game_finished")] = true
		}
	}
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-p.done:
		require.NoError(t, err, "exit code 0 after SIGTERM; stderr:\n%s", p.stderr.String())
		p.done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("rtmanager did not stop after SIGTERM")
	}
	assert.Contains(t, p.stderr.String(), "rtmanager stopped")

	startBinary(t, args...)
	w.waitLen(t, results, int64(len(ids)))
	require.Eventually(t, func() bool {
		pend, err := w.rdb.XPending(context.Background(), jobs, "rtmanager").Result()
		return err == nil && pend.Count == 0
	}, 20*time.Second, 20*time.Millisecond)
	time.Sleep(200 * time.Millisecond)
	seen := map[string]int{}
	for _, r := range w.entries(t, results) {
		seen[r["job_id"]]++
	}
	assert.Len(t, seen, len(ids))
	for id := range ids {
		assert.Equal(t, 1, seen[id], "job %s", id)
	}
}

func TestEndToEndBadStartUp(t *testing.T) {
	w := newWorld(t, testredis.Options{Args: []string{"--requirepass", "right-pass"}})
	cases := map[string][]string{
		"unknown runtime":   {"--runtime", "kubernetes"},
		"bad url":           {"--redis-url", "http://u:hunter2@127.0.0.1:1/0"},
		"unparsable url":    {"--redis-url", "redis://u:hunter2@127.0.0.1:port/0"},
		"wrong password":    {"--redis-url", "redis://:hunter2@" + w.srv.Addr() + "/0", "--runtime", "none"},
		"bad start id":      {"--start-id", "yesterday"},
		"bad workers":       {"--workers", "0"},
		"bad waiting stops": {"--max-waiting-stops", "-1"},
		"unknown flag":      {"--colour", "blue"},
		"bad duration env":  nil,
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			cmd := exec.Command(binary(t), append(args, "--http-addr", "")...)
			if args == nil {
				cmd.Env = append(os.Environ(), "RTMANAGER_CLAIM_IDLE=soon")
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, 2, ee.ExitCode())
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			assert.Len(t, lines, 1, "one clear line: %q", stderr.String())
			assert.True(t, strings.HasPrefix(lines[0], "rtmanager: "), lines[0])
			assert.NotContains(t, stderr.String(), "hunter2")
		})
	}
}

func TestHelpDocumentsEveryFlag(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"--help"}, func(string) string { return "" }, &out, io.Discard)
	require.ErrorIs(t, err, flag.ErrHelp)
	for _, f := range []string{"redis-url", "runtime", "docker-host", "workers", "group", "consumer", "start-id", "max-deliveries", "max-waiting-stops", "claim-idle", "stop-grace", "http-addr", "log-format", "log-level", "prefetch", "process-allow-uids", "shutdown-timeout", "retry-backoff", "console", "console-token"} {
		assert.Contains(t, out.String(), "--"+f+" (RTMANAGER_"+strings.ToUpper(strings.ReplaceAll(f, "-", "_"))+")")
	}
}

func TestEnvironmentSetsDefaultsAndFlagsWin(t *testing.T) {
	env := map[string]string{"RTMANAGER_WORKERS": "3", "RTMANAGER_RUNTIME": "none"}
	cfg, err := parseConfig([]string{"--workers", "5"}, func(k string) string { return env[k] }, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 5, cfg.Workers)
	assert.Equal(t, "none", cfg.Runtime)
}

// /readyz is not ready while Redis is unreachable, and ready again after.
func TestReadyzFollowsRedis(t *testing.T) {
	w := newWorld(t, testredis.Options{AppendOnly: true})
	p := startBinary(t, "--redis-url", w.srv.URL(), "--runtime", "none")
	require.NoError(t, w.srv.Kill())
	require.Eventually(t, func() bool { return p.get("/readyz") == http.StatusServiceUnavailable }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, w.srv.Restart())
	require.Eventually(t, func() bool { return p.get("/readyz") == http.StatusOK }, 20*time.Second, 20*time.Millisecond)
	_, err := w.svc.Register(context.Background(), stopruntime.Record{GameID: "g1", Runtime: "none"})
	require.NoError(t, err)
	w.add(t, "game_id", "g1", "reason", "game_finished")
	w.waitLen(t, results, 1)
}
