package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// runToExit runs the binary to its end and returns its exit code and stderr.
func runToExit(t *testing.T, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	require.NoError(t, ctx.Err(), "rtmanager did not exit within %s; stderr:\n%s", timeout, stderr.String())
	if err == nil {
		return 0, stderr.String()
	}
	ee, ok := err.(*exec.ExitError)
	require.True(t, ok, "run: %v", err)
	return ee.ExitCode(), stderr.String()
}

// wantUsageExit asserts exit 2 with one line on stderr.
func wantUsageExit(t *testing.T, code int, stderr, want string) {
	t.Helper()
	assert.Equal(t, 2, code, stderr)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	require.NotEmpty(t, lines)
	last := lines[len(lines)-1]
	assert.True(t, strings.HasPrefix(last, "rtmanager: "), last)
	assert.Contains(t, last, want)
}

// A --redis-url that does not parse is described, never echoed: not the
// password, not its Go-quoted copy, not a piece of it.
func TestUnparsableRedisURLNeverShowsThePassword(t *testing.T) {
	cases := map[string]struct{ url, secret string }{
		"quote and bad escape": {`redis://u:s3"cr3t%zz@127.0.0.1:1/0`, `s3"cr3t`},
		"control character":    {"redis://u:s3cr\x01t@127.0.0.1:1/0", "s3cr"},
		"tab":                  {"redis://u:s3cr\tt@127.0.0.1:1/0", "s3cr"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			code, stderr := runToExit(t, 30*time.Second, "--redis-url", c.url, "--http-addr", "")
			wantUsageExit(t, code, stderr, "invalid --redis-url")
			q := strconv.Quote(c.secret)
			for _, form := range []string{c.secret, q[1 : len(q)-1], "%zz", "cr3t"} {
				assert.NotContains(t, stderr, form)
			}
		})
	}
}

func TestPrefetchIsBounded(t *testing.T) {
	_, err := parseConfig([]string{"--prefetch", "1000000000"}, func(string) string { return "" }, io.Discard)
	var ue *usageError
	require.ErrorAs(t, err, &ue)
	assert.Contains(t, ue.msg, "--prefetch")
	assert.Contains(t, ue.msg, strconv.Itoa(maxPrefetch))
	cfg, err := parseConfig([]string{"--prefetch", strconv.Itoa(maxPrefetch)}, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, maxPrefetch, cfg.Prefetch)
}

// Two processes with one host name and one pid (pid 1 in two containers)
// still get different default consumer names.
func TestDefaultConsumerNamesDiffer(t *testing.T) {
	a, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	b, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	require.NoError(t, err)
	assert.NotEqual(t, a.Consumer, b.Consumer)
	assert.Contains(t, a.Consumer, "-"+strconv.Itoa(syscall.Getpid())+"-")
}

func TestProcessAllowUIDsFlag(t *testing.T) {
	env := func(string) string { return "" }
	cfg, err := parseConfig(nil, env, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []int{syscall.Getuid()}, cfg.ProcessUIDs)
	assert.False(t, cfg.ProcessAnyUID)
	cfg, err = parseConfig([]string{"--process-allow-uids", "1000, 1001,self"}, env, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []int{1000, 1001, syscall.Getuid()}, cfg.ProcessUIDs)
	cfg, err = parseConfig(nil, func(k string) string {
		if k == "RTMANAGER_PROCESS_ALLOW_UIDS" {
			return "any"
		}
		return ""
	}, io.Discard)
	require.NoError(t, err)
	assert.True(t, cfg.ProcessAnyUID)
	_, err = parseConfig([]string{"--process-allow-uids", "root"}, env, io.Discard)
	var ue *usageError
	require.ErrorAs(t, err, &ue)
}

// SIGHUP drains like SIGTERM: exit 0 after "rtmanager stopped", not death
// by the signal.
func TestSIGHUPDrainsLikeSIGTERM(t *testing.T) {
	w := newWorld(t)
	p := startBinary(t, "--redis-url", w.srv.URL(), "--runtime", "none")
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGHUP))
	select {
	case err := <-p.done:
		p.done <- err
		require.NoError(t, err, "exit 0 after SIGHUP; stderr:\n%s", p.stderr.String())
	case <-time.After(30 * time.Second):
		t.Fatal("rtmanager did not stop after SIGHUP")
	}
	assert.Contains(t, p.stderr.String(), "rtmanager stopped")
}

// When --http-addr cannot be bound, rtmanager exits 2 before touching the
// job stream: no job read ahead, none left to the claim timeout.
func TestBindFailureReadsNoJob(t *testing.T) {
	w := newWorld(t)
	_, err := w.svc.Register(context.Background(), stopruntime.Record{GameID: "g1", Runtime: "none"})
	require.NoError(t, err)
	for i := 0; i < 20; i++ {
		w.add(t, "game_id", "g1", "reason", "game_finished")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	require.NoError(t, w.rdb.ConfigResetStat(context.Background()).Err())

	code, stderr := runToExit(t, 30*time.Second, "--redis-url", w.srv.URL(), "--runtime", "none", "--http-addr", ln.Addr().String())
	wantUsageExit(t, code, stderr, "--http-addr")

	stats, err := w.rdb.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	for _, line := range strings.Split(stats, "\n") {
		name, _, ok := strings.Cut(strings.TrimPrefix(line, "cmdstat_"), ":")
		if !ok || !strings.HasPrefix(line, "cmdstat_") {
			continue
		}
		switch {
		case strings.HasPrefix(name, "x"), strings.HasPrefix(name, "eval"), strings.HasPrefix(name, "fcall"), strings.HasPrefix(name, "script"):
			t.Errorf("rtmanager ran %s before its HTTP listener was bound: %s", name, line)
		}
	}
	pend, err := w.rdb.XInfoGroups(context.Background(), jobs).Result()
	require.NoError(t, err)
	assert.Empty(t, pend, "no consumer group may have been created")
}

// Configuration errors no retry can fix exit 2 at start-up with a clear
// line; a Redis that is merely away is waited for, and checked once it
// answers.
func TestUnfixableRedisConfigurationExits2(t *testing.T) {
	srv := testredis.Start(t)
	t.Run("database out of range", func(t *testing.T) {
		code, stderr := runToExit(t, 30*time.Second, "--redis-url", "redis://"+srv.Addr()+"/99", "--runtime", "none", "--http-addr", "")
		wantUsageExit(t, code, stderr, "no database 99")
	})
	t.Run("TLS against a plaintext server", func(t *testing.T) {
		code, stderr := runToExit(t, 60*time.Second, "--redis-url", "rediss://"+srv.Addr()+"/0", "--runtime", "none", "--http-addr", "")
		wantUsageExit(t, code, stderr, "speaks plain Redis")
	})
	t.Run("found once Redis answers", func(t *testing.T) {
		late := testredis.Start(t)
		require.NoError(t, late.Kill())
		p := &proc{cmd: exec.Command(binary(t), "--redis-url", "redis://"+late.Addr()+"/99", "--runtime", "none", "--http-addr", "",
			// The broker's own retries of the group never created spin
			// until the shutdown deadline (issue 17, item 4): keep it short.
			"--shutdown-timeout", "2s"),
			stderr: &syncBuffer{}, done: make(chan error, 1)}
		p.cmd.Stderr = p.stderr
		require.NoError(t, p.cmd.Start())
		go func() { p.done <- p.cmd.Wait() }()
		t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = <-p.done })
		require.Eventually(t, func() bool { return strings.Contains(p.stderr.String(), "will keep trying") }, 20*time.Second, 20*time.Millisecond)
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("rtmanager exited while Redis was away: %v\n%s", err, p.stderr.String())
		default:
		}
		require.NoError(t, late.Restart())
		select {
		case err := <-p.done:
			p.done <- err
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, 2, ee.ExitCode(), p.stderr.String())
			assert.Contains(t, p.stderr.String(), "rtmanager: redis has no database 99")
		case <-time.After(30 * time.Second):
			t.Fatalf("rtmanager did not exit once Redis answered; stderr:\n%s", p.stderr.String())
		}
	})
}

// /readyz answers within its 1 s timeout, not ready with the reason, while
// Redis does not answer (CLIENT PAUSE).
func TestReadyzAnswersWithinItsTimeout(t *testing.T) {
	w := newWorld(t)
	p := startBinary(t, "--redis-url", w.srv.URL(), "--runtime", "none")
	ctl := w.srv.Client()
	defer ctl.Close()
	require.NoError(t, ctl.Do(context.Background(), "CLIENT", "PAUSE", "6000", "ALL").Err())
	t.Cleanup(func() { _ = ctl.Do(context.Background(), "CLIENT", "UNPAUSE").Err() })

	for i := 0; i < 2; i++ { // the second probe may join a check in flight
		began := time.Now()
		resp, err := http.Get("http://" + p.http + "/readyz")
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		took := time.Since(began)
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, string(body))
		assert.Contains(t, string(body), "within 1s")
		assert.Less(t, took, 2500*time.Millisecond, "readyz took %s", took)
	}
	require.NoError(t, ctl.Do(context.Background(), "CLIENT", "UNPAUSE").Err())
	require.Eventually(t, func() bool { return p.get("/readyz") == http.StatusOK }, 20*time.Second, 20*time.Millisecond)
}

// A record naming rtmanager's own pid is refused with a permanent failure;
// rtmanager neither signals itself nor its group.
func TestProcessRuntimeNeverStopsRtmanager(t *testing.T) {
	w := newWorld(t)
	addr, err := testredis.FreeAddr()
	require.NoError(t, err)
	// Its own process group, as an operator's supervisor would start it, so
	// that the bug this guards against hits only rtmanager.
	p := &proc{cmd: exec.Command(binary(t), "--http-addr", addr, "--redis-url", w.srv.URL(), "--runtime", "process", "--stop-grace", "1s"),
		stderr: &syncBuffer{}, done: make(chan error, 1), http: addr}
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.Stderr = p.stderr
	require.NoError(t, p.cmd.Start())
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = <-p.done })
	require.Eventually(t, func() bool { return p.get("/readyz") == http.StatusOK }, 20*time.Second, 20*time.Millisecond, p.stderr.String())

	id, err := process.IDForPID(p.cmd.Process.Pid)
	require.NoError(t, err)
	_, err = w.svc.Register(context.Background(), stopruntime.Record{GameID: "self", Runtime: "process", ContainerID: id, EngineEndpoint: "127.0.0.1:1"})
	require.NoError(t, err)
	job := w.add(t, "game_id", "self", "reason", "admin_request")
	w.waitLen(t, results, 1)
	res := w.entries(t, results)
	require.Len(t, res, 1)
	assert.Equal(t, job, res[0]["job_id"])
	assert.Equal(t, "failure", res[0]["outcome"])
	assert.Equal(t, "stop_failed", res[0]["error_code"])
	assert.Contains(t, res[0]["error_message"], "rtmanager itself")
	select {
	case err := <-p.done:
		p.done <- err
		t.Fatalf("rtmanager exited: %v\n%s", err, p.stderr.String())
	default:
	}
	assert.Equal(t, http.StatusOK, p.get("/healthz"))
	assert.Equal(t, http.StatusOK, p.get("/readyz"), "stderr:\n%s", p.stderr.String())
}
