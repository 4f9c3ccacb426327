package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/testredis"
)

func TestMain(m *testing.M) {
	redis.SetLogger(quietLogger{}) // as main does
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
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

type outcome struct {
	code           int
	stdout, stderr string
}

// cli runs the tool with RTMANAGER_REDIS_URL=url.
func cli(t *testing.T, url string, args ...string) outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cliCtx(ctx, url, args...)
}

func cliCtx(ctx context.Context, url string, args ...string) outcome {
	var out, errb bytes.Buffer
	getenv := func(k string) string {
		if k == envRedisURL {
			return url
		}
		return ""
	}
	code := run(ctx, args, getenv, &out, &errb)
	return outcome{code, out.String(), errb.String()}
}

func requireOK(t *testing.T, o outcome) {
	t.Helper()
	require.Equalf(t, 0, o.code, "stdout: %s\nstderr: %s", o.stdout, o.stderr)
	require.Empty(t, o.stderr)
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	require.NoErrorf(t, json.Unmarshal([]byte(s), &v), "output: %s", s)
	return v
}

func tctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func addResult(t *testing.T, c *redis.Client, jobID, game, outcome, code string) string {
	t.Helper()
	id, err := c.XAdd(tctx(t), &redis.XAddArgs{Stream: resultsKey, Values: []any{
		"job_id", jobID, "game_id", game, "operation", "stop", "outcome", outcome, "error_code", code,
		"error_message", "", "container_id", "c-" + game, "engine_endpoint", "10.0.0.1:7000",
		"completed_at_ms", "1764160000420",
	}}).Result()
	require.NoError(t, err)
	return id
}

func TestHelp(t *testing.T) {
	o := cli(t, "")
	assert.Equal(t, 2, o.code)
	assert.Contains(t, o.stderr, "no command given")

	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		o := cli(t, "", args...)
		requireOK(t, o)
		for _, c := range []string{"send-stop", "results", "register", "status", "pending", "dead"} {
			assert.Contains(t, o.stdout, c)
		}
	}
	for _, args := range [][]string{
		{"send-stop", "--help"}, {"results", "-h"}, {"register", "--help"}, {"status", "--help"},
		{"pending", "--help"}, {"dead", "--help"}, {"dead", "list", "--help"}, {"dead", "replay", "--help"},
		{"help", "status"}, {"help", "send-stop"},
	} {
		o := cli(t, "redis://127.0.0.1:1/0", args...)
		requireOK(t, o)
		name := args[0]
		if name == "help" {
			name = args[1]
		}
		assert.Contains(t, o.stdout, "Usage: rtmanagerctl "+name, args)
		assert.Contains(t, o.stdout, "-redis-url", args)
	}
	o = cli(t, "", "help", "send-stop")
	assert.Contains(t, o.stdout, "-wait-timeout")
	assert.Contains(t, o.stdout, "-raw")
}

func TestBadUsageExits2WithOneLine(t *testing.T) {
	srv := testredis.Start(t)
	for _, args := range [][]string{
		{"frobnicate"},
		{"--nope", "status", "g1"},
		{"status"},
		{"status", "g1", "g2"},
		{"status", "g1", "--bogus"},
		{"status", "bad{id}"},
		{"send-stop", "g1"},
		{"send-stop", "g1", "--reason", "vacation"},
		{"send-stop", "g1", "--reason", "game_finished", "--requested-at-ms", "-5"},
		{"send-stop", "g1", "--reason", "game_finished", "--wait", "--wait-timeout", "0s"},
		{"results", "--count", "0"},
		{"results", "--count", "x"},
		{"register", "g1", "--endpoint", "h:1", "--runtime", "kubernetes", "--container", "c"},
		{"register", "g1", "--endpoint", "h:1", "--runtime", "docker"},
		{"register", "g1", "--endpoint", "nope", "--runtime", "docker", "--container", "c"},
		{"register", "g1", "--endpoint", "h:1", "--runtime", "docker", "--pid", "1"},
		{"register", "g1", "--endpoint", "h:1", "--runtime", "process", "--container", "abc"},
		{"dead"},
		{"dead", "bury"},
		{"dead", "replay"},
		{"dead", "replay", "1-0", "--all"},
		{"dead", "replay", "not-an-id"},
		{"--timeout", "0s", "results"},
		{"--redis-url", "http://127.0.0.1/0", "results"},
	} {
		o := cli(t, srv.URL(), args...)
		assert.Equal(t, 2, o.code, "%v: %s", args, o.stderr)
		assert.Empty(t, o.stdout, args)
		assert.Equal(t, 1, strings.Count(o.stderr, "\n"), "%v: %q", args, o.stderr)
		assert.True(t, strings.HasPrefix(o.stderr, "rtmanagerctl: "), "%v: %q", args, o.stderr)
	}
	// Nothing was written by the refused commands.
	n, err := srv.Client().Exists(tctx(t), jobsKey).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestRedisUnreachableExits1(t *testing.T) {
	srv := testredis.Start(t)
	url := srv.URL()
	require.NoError(t, srv.Close())
	o := cli(t, url, "results")
	assert.Equal(t, 1, o.code)
	assert.Contains(t, o.stderr, "connect to redis at "+url)
	assert.Equal(t, 1, strings.Count(o.stderr, "\n"), o.stderr)
}

func TestPasswordNeverPrinted(t *testing.T) {
	const secret = "s3cret-pw"
	const wrong = "wr0ng-pw-7"
	srv := testredis.Start(t, testredis.Options{Args: []string{"--requirepass", secret}})
	good := fmt.Sprintf("redis://:%s@%s/0", secret, srv.Addr())
	bad := fmt.Sprintf("redis://:%s@%s/0", wrong, srv.Addr())

	check := func(o outcome) {
		t.Helper()
		for _, s := range []string{secret, wrong} {
			assert.NotContains(t, o.stdout, s)
			assert.NotContains(t, o.stderr, s)
		}
	}

	// Wrong password, from the environment and from the flag.
	o := cli(t, bad, "results")
	check(o)
	assert.Equal(t, 2, o.code, o.stderr)
	assert.Contains(t, o.stderr, "WRONGPASS")
	assert.Contains(t, o.stderr, "xxxxx")
	o = cli(t, "", "--redis-url", bad, "status", "g1")
	check(o)
	assert.Equal(t, 2, o.code, o.stderr)

	// No password at all.
	o = cli(t, "redis://"+srv.Addr()+"/0", "results")
	check(o)
	assert.Equal(t, 2, o.code, o.stderr)
	assert.Contains(t, o.stderr, "NOAUTH")

	// Help shows the environment's URL redacted.
	o = cli(t, good, "status", "--help")
	check(o)
	assert.Equal(t, 0, o.code)

	// An unparsable URL is not echoed.
	o = cli(t, "", "--redis-url", "redis://:"+secret+"@[::1", "results")
	check(o)
	assert.Equal(t, 2, o.code)
	o = cli(t, "", "--redis-url", "redis://:"+secret+"@"+srv.Addr()+"/notanumber", "results")
	check(o)
	assert.Equal(t, 2, o.code, o.stderr)
	// Issue 17's URLs: a quote and a bad escape, a control character.
	for _, u := range []string{`redis://u:s3"cr3t%zz@127.0.0.1:1/0`, "redis://u:s3cr\x01t@127.0.0.1:1/0"} {
		o = cli(t, "", "--redis-url", u, "results")
		assert.Equal(t, 2, o.code, o.stderr)
		assert.NotContains(t, o.stderr, "cr3t")
		assert.NotContains(t, o.stderr, "s3cr")
		assert.NotContains(t, o.stderr, "%zz")
	}

	// The right password works, and still is not printed.
	o = cli(t, good, "status", "g1")
	check(o)
	assert.Equal(t, 1, o.code)
	assert.Contains(t, o.stderr, "no runtime record for game g1")
	o = cli(t, good, "--json", "send-stop", "g1", "--reason", "admin_request")
	check(o)
	requireOK(t, o)
}

func TestSendStop(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()

	o := cli(t, srv.URL(), "send-stop", " g-7f3a2c ", "--reason", "game_finished", "--requested-at-ms", "1764160000000")
	requireOK(t, o)
	id := strings.TrimSpace(o.stdout)
	assert.Regexp(t, `^[0-9]+-[0-9]+$`, id)

	// Flags before the positional, --json after it.
	o = cli(t, srv.URL(), "send-stop", "--reason", "admin_request", "galaxy.eu-1:42", "--json")
	requireOK(t, o)
	v := decode[sendView](t, o.stdout)
	assert.Nil(t, v.Result)

	// --raw writes what it is given, a bad reason and no requested time.
	o = cli(t, srv.URL(), "send-stop", "--raw", "bad{id}", "--reason", "vacation")
	requireOK(t, o)
	rawID := strings.TrimSpace(o.stdout)

	msgs, err := c.XRange(tctx(t), jobsKey, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 3)
	assert.Equal(t, id, msgs[0].ID)
	assert.Equal(t, map[string]any{"game_id": "g-7f3a2c", "reason": "game_finished", "requested_at_ms": "1764160000000"}, msgs[0].Values)
	assert.Equal(t, v.JobID, msgs[1].ID)
	assert.Equal(t, map[string]any{"game_id": "galaxy.eu-1:42", "reason": "admin_request"}, msgs[1].Values)
	assert.Equal(t, rawID, msgs[2].ID)
	assert.Equal(t, map[string]any{"game_id": "bad{id}", "reason": "vacation"}, msgs[2].Values)
}

// playRtmanager answers the next n stop jobs after id "from" with a result
// carrying their job_id, after first writing an unrelated result.
func playRtmanager(t *testing.T, c *redis.Client, from string) <-chan error {
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := c.XRead(ctx, &redis.XReadArgs{Streams: []string{jobsKey, from}, Count: 1, Block: 15 * time.Second}).Result()
		if err != nil {
			done <- fmt.Errorf("read job: %w", err)
			return
		}
		job := res[0].Messages[0]
		game, _ := job.Values["game_id"].(string)
		// Another job's result first: --wait must skip it.
		if err := c.XAdd(ctx, &redis.XAddArgs{Stream: resultsKey, Values: []any{
			"job_id", "1-0", "game_id", "other", "operation", "stop", "outcome", "failure",
			"error_code", "not_found", "error_message", "x", "container_id", "", "engine_endpoint", "", "completed_at_ms", "1",
		}}).Err(); err != nil {
			done <- err
			return
		}
		time.Sleep(300 * time.Millisecond)
		done <- c.XAdd(ctx, &redis.XAddArgs{Stream: resultsKey, Values: []any{
			"job_id", job.ID, "game_id", game, "operation", "stop", "outcome", "success",
			"error_code", "", "error_message", "", "container_id", "ctr-1", "engine_endpoint", "10.0.3.17:7000",
			"completed_at_ms", "1764160000420",
		}}).Err()
	}()
	return done
}

func TestSendStopWait(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()
	// An old result for an unrelated job is already there.
	addResult(t, c, "5-0", "old", "success", "")

	done := playRtmanager(t, c, "0-0")
	o := cli(t, srv.URL(), "--json", "send-stop", "g1", "--reason", "game_finished", "--wait", "--wait-timeout", "10s")
	require.NoError(t, <-done)
	requireOK(t, o)
	v := decode[sendView](t, o.stdout)
	require.NotNil(t, v.Result)
	assert.Equal(t, v.JobID, v.Result.JobId)
	assert.Equal(t, "g1", v.Result.GameId)
	assert.Equal(t, "success", v.Result.Outcome)
	assert.Equal(t, "ctr-1", v.Result.ContainerId)
	assert.Equal(t, "10.0.3.17:7000", v.Result.EngineEndpoint)
	assert.Equal(t, int64(1764160000420), v.Result.CompletedAtMs)

	// Human output: the job id line, then the result table.
	last, err := lastID(tctx(t), c, jobsKey)
	require.NoError(t, err)
	done = playRtmanager(t, c, last)
	o = cli(t, srv.URL(), "send-stop", "g2", "--reason", "idle_timeout", "--wait")
	require.NoError(t, <-done)
	requireOK(t, o)
	lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
	require.Len(t, lines, 3, o.stdout)
	assert.Contains(t, lines[0], "sent; waiting")
	assert.Contains(t, lines[1], "OUTCOME")
	assert.Contains(t, lines[2], "g2")
	assert.Contains(t, lines[2], "success")
	assert.NotContains(t, o.stdout, "other")
}

func TestSendStopWaitTimeout(t *testing.T) {
	srv := testredis.Start(t)
	start := time.Now()
	o := cli(t, srv.URL(), "--json", "send-stop", "g1", "--reason", "game_finished", "--wait", "--wait-timeout", "400ms")
	assert.Equal(t, 1, o.code)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Contains(t, o.stderr, "no result for job")
	v := decode[sendView](t, o.stdout)
	assert.Regexp(t, `^[0-9]+-[0-9]+$`, v.JobID)
	assert.Nil(t, v.Result)
}

func TestResults(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()

	o := cli(t, srv.URL(), "--json", "results")
	requireOK(t, o)
	assert.Empty(t, o.stdout)

	var ids []string
	for i := 1; i <= 3; i++ {
		ids = append(ids, addResult(t, c, fmt.Sprintf("%d-0", i), fmt.Sprintf("g%d", i), "success", ""))
	}
	o = cli(t, srv.URL(), "results", "--count", "2", "--json")
	requireOK(t, o)
	lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
	require.Len(t, lines, 2)
	first, second := decode[resultView](t, lines[0]), decode[resultView](t, lines[1])
	assert.Equal(t, ids[1], first.ID)
	assert.Equal(t, "2-0", first.JobId)
	assert.Equal(t, "g2", first.GameId)
	assert.Equal(t, "c-g2", first.ContainerId)
	assert.Equal(t, ids[2], second.ID)

	o = cli(t, srv.URL(), "results")
	requireOK(t, o)
	lines = strings.Split(strings.TrimSpace(o.stdout), "\n")
	require.Len(t, lines, 4)
	assert.Regexp(t, `^ID\s+JOB\s+GAME\s+OUTCOME`, lines[0])
	assert.Contains(t, lines[1], "g1")
	assert.Contains(t, lines[1], "2025-11-26T12:26:40.420Z")
}

func TestResultsFollow(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()
	addResult(t, c, "1-0", "old", "success", "")

	fctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	codec := make(chan int, 1)
	go func() {
		getenv := func(string) string { return srv.URL() }
		codec <- run(fctx, []string{"results", "--follow", "--json", "--count", "1"}, getenv, &out, &errb)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), `"old"`) }, 10*time.Second, 20*time.Millisecond)
	addResult(t, c, "2-0", "new1", "failure", "not_found")
	addResult(t, c, "3-0", "new2", "success", "replay_no_op")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), `"new2"`) }, 10*time.Second, 20*time.Millisecond)
	cancel()
	select {
	case code := <-codec:
		assert.Equal(t, 0, code, errb.String())
	case <-time.After(5 * time.Second):
		t.Fatal("--follow did not stop when its context was cancelled")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 3)
	var games []string
	for _, l := range lines {
		games = append(games, decode[resultView](t, l).GameId)
	}
	assert.Equal(t, []string{"old", "new1", "new2"}, games)
	assert.Equal(t, "not_found", decode[resultView](t, lines[1]).ErrorCode)
}

func TestRegisterAndStatus(t *testing.T) {
	srv := testredis.Start(t)

	o := cli(t, srv.URL(), "status", "g1")
	assert.Equal(t, 1, o.code)
	assert.Empty(t, o.stdout)
	assert.Contains(t, o.stderr, "no runtime record for game g1")

	o = cli(t, srv.URL(), "register", "g1", "--container", "4f1c9a0e2b7d", "--endpoint", "10.0.3.17:7000", "--runtime", "docker", "--json")
	requireOK(t, o)
	reg := decode[recordView](t, o.stdout)
	assert.Equal(t, "running", reg.Status)

	o = cli(t, srv.URL(), "--json", "status", "g1")
	requireOK(t, o)
	rec := decode[map[string]any](t, o.stdout)
	assert.Equal(t, "g1", rec["game_id"])
	assert.Equal(t, "running", rec["status"])
	assert.Equal(t, "docker", rec["runtime"])
	assert.Equal(t, "4f1c9a0e2b7d", rec["container_id"])
	assert.Equal(t, "10.0.3.17:7000", rec["engine_endpoint"])
	assert.InDelta(t, float64(time.Now().UnixMilli()), rec["updated_at_ms"], 60000)
	assert.Nil(t, rec["last_result"])
	for _, k := range []string{"last_job_id", "stopping_job_id", "stopping_since_ms"} {
		assert.Contains(t, rec, k)
	}

	// The record as stored by runtimestore.
	h, err := srv.Client().HGetAll(tctx(t), "rtmanager:runtime:{g1}").Result()
	require.NoError(t, err)
	assert.Equal(t, "4f1c9a0e2b7d", h["container_id"])

	// Process runtime by pid: the container id is the driver's id.
	o = cli(t, srv.URL(), "register", "p1", "--pid", fmt.Sprint(os.Getpid()), "--endpoint", "127.0.0.1:7001", "--runtime", "process")
	requireOK(t, o)
	want, err := process.IDForPID(os.Getpid())
	require.NoError(t, err)
	assert.Contains(t, o.stdout, want)
	o = cli(t, srv.URL(), "status", "p1", "--json")
	requireOK(t, o)
	assert.Equal(t, want, decode[recordView](t, o.stdout).ContainerID)

	// --pid with a different --container is refused.
	o = cli(t, srv.URL(), "register", "p1", "--pid", fmt.Sprint(os.Getpid()), "--container", "pid:1:start:1", "--endpoint", "127.0.0.1:7001", "--runtime", "process")
	assert.Equal(t, 2, o.code)

	// Human status lists every field.
	o = cli(t, srv.URL(), "status", "p1")
	requireOK(t, o)
	for _, k := range []string{"game_id", "status", "runtime", "container_id", "engine_endpoint", "updated_at", "last_job_id", "last_result", "stopping_job_id", "stopping_since"} {
		assert.Regexp(t, "(?m)^"+k+`\s`, o.stdout)
	}

	// A record being stopped cannot be registered over.
	require.NoError(t, srv.Client().HSet(tctx(t), "rtmanager:runtime:{g1}", "status", "stopping", "stopping_job_id", "9-0").Err())
	o = cli(t, srv.URL(), "register", "g1", "--container", "x", "--endpoint", "h:1", "--runtime", "docker")
	assert.Equal(t, 1, o.code)
	assert.Contains(t, o.stderr, "in progress")
}

func TestPending(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()

	o := cli(t, srv.URL(), "pending")
	assert.Equal(t, 1, o.code)
	assert.Contains(t, o.stderr, "does not exist")

	var ids []string
	for i := 0; i < 5; i++ {
		id, err := c.XAdd(tctx(t), &redis.XAddArgs{Stream: jobsKey, Values: []any{"game_id", fmt.Sprint("g", i), "reason", "game_finished"}}).Result()
		require.NoError(t, err)
		ids = append(ids, id)
	}
	o = cli(t, srv.URL(), "pending")
	assert.Equal(t, 1, o.code)
	assert.Contains(t, o.stderr, `no consumer group "rtmanager"`)

	require.NoError(t, c.XGroupCreate(tctx(t), jobsKey, defaultGroup, "0").Err())
	read := func(consumer string, n int64) {
		require.NoError(t, c.XReadGroup(tctx(t), &redis.XReadGroupArgs{
			Group: defaultGroup, Consumer: consumer, Streams: []string{jobsKey, ">"}, Count: n, Block: -1,
		}).Err())
	}
	read("host-a", 2)
	read("host-b", 1)
	// Redeliver the first entry to host-b.
	require.NoError(t, c.XClaim(tctx(t), &redis.XClaimArgs{Stream: jobsKey, Group: defaultGroup, Consumer: "host-b", Messages: []string{ids[0]}}).Err())

	o = cli(t, srv.URL(), "pending", "--json")
	requireOK(t, o)
	v := decode[pendingView](t, o.stdout)
	assert.Equal(t, jobsKey, v.Stream)
	assert.Equal(t, defaultGroup, v.Group)
	assert.Equal(t, int64(3), v.Pending)
	assert.Equal(t, ids[0], v.Lowest)
	assert.Equal(t, ids[2], v.Highest)
	assert.Equal(t, []consumerView{{"host-a", 1}, {"host-b", 2}}, v.Consumers)
	assert.Equal(t, int64(2), v.GroupConsumers)
	assert.Equal(t, int64(2), v.Lag)
	assert.Equal(t, ids[2], v.LastDeliveredID)
	require.Len(t, v.Oldest, 3)
	assert.Equal(t, ids[0], v.Oldest[0].ID)
	assert.Equal(t, "host-b", v.Oldest[0].Consumer)
	assert.Equal(t, int64(2), v.Oldest[0].Deliveries)
	assert.Equal(t, "host-a", v.Oldest[1].Consumer)
	assert.Equal(t, int64(1), v.Oldest[1].Deliveries)
	assert.GreaterOrEqual(t, v.Oldest[1].IdleMS, int64(0))

	o = cli(t, srv.URL(), "pending", "--count", "1", "--json")
	requireOK(t, o)
	assert.Len(t, decode[pendingView](t, o.stdout).Oldest, 1)

	o = cli(t, srv.URL(), "pending", "--group", "other")
	assert.Equal(t, 1, o.code)

	o = cli(t, srv.URL(), "pending")
	requireOK(t, o)
	assert.Regexp(t, `(?m)^pending\s+3$`, o.stdout)
	assert.Regexp(t, `(?m)^lag \(not yet delivered\)\s+2$`, o.stdout)
	assert.Regexp(t, `(?m)^host-b\s+2$`, o.stdout)
	assert.Regexp(t, `(?m)^`+ids[0]+`\s+host-b\s+\S+\s+2$`, o.stdout)
}

func addDead(t *testing.T, c *redis.Client, values ...any) string {
	t.Helper()
	id, err := c.XAdd(tctx(t), &redis.XAddArgs{Stream: deadKey, Values: values}).Result()
	require.NoError(t, err)
	return id
}

func TestDeadListAndReplay(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()

	o := cli(t, srv.URL(), "dead", "list")
	requireOK(t, o)
	assert.Equal(t, "no dead letters\n", o.stdout)

	d1 := addDead(t, c, "dead_reason", "invalid", "dead_error", "reason: must be one of ...", "original_id", "100-0",
		"delivery_count", "1", "dead_at_ms", "1764160000700", "game_id", "g-7f3a2c", "reason", "vacation")
	d2 := addDead(t, c, "dead_reason", "max_deliveries", "dead_error", "runtime unavailable", "original_id", "101-0",
		"delivery_count", "5", "dead_at_ms", "1764160000800", "game_id", "g2", "reason", "game_finished",
		"requested_at_ms", "1764160000000", "original.dead_reason", "mine", "extra", "x")
	d3 := addDead(t, c, "dead_reason", "undecodable", "dead_error", "bad", "original_id", "102-0",
		"delivery_count", "1", "dead_at_ms", "1764160000900", "reason", "admin_request")

	o = cli(t, srv.URL(), "dead", "list", "--json")
	requireOK(t, o)
	list := decode[[]deadView](t, o.stdout)
	require.Len(t, list, 3)
	assert.Equal(t, deadView{
		ID: d2, RuntimeStopJobDeadLetterSchema: runtimejobs.RuntimeStopJobDeadLetterSchema{
			OriginalId: "101-0", DeadReason: "max_deliveries", DeadError: "runtime unavailable", DeliveryCount: 5,
			DeadAtMs: 1764160000800,
		},
		GameID: "g2", Reason: "game_finished",
		Fields: map[string]string{"game_id": "g2", "reason": "game_finished", "requested_at_ms": "1764160000000", "dead_reason": "mine", "extra": "x"},
	}, list[1])
	assert.Equal(t, d1, list[0].ID)
	assert.Empty(t, list[2].GameID)

	o = cli(t, srv.URL(), "dead", "list", "--count", "1")
	requireOK(t, o)
	assert.Contains(t, o.stdout, "(1 of 3;")
	assert.Contains(t, o.stdout, "vacation")

	// Replay one.
	o = cli(t, srv.URL(), "dead", "replay", d2, "--json")
	requireOK(t, o)
	rep := decode[[]replayView](t, o.stdout)
	require.Len(t, rep, 1)
	assert.Equal(t, d2, rep[0].DeadID)
	assert.Equal(t, "101-0", rep[0].OriginalID)
	jobs, err := c.XRange(tctx(t), jobsKey, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	assert.Equal(t, rep[0].JobID, jobs[0].ID)
	assert.Equal(t, map[string]any{"game_id": "g2", "reason": "game_finished", "requested_at_ms": "1764160000000",
		"dead_reason": "mine", "extra": "x"}, jobs[0].Values)
	dead, err := c.XRange(tctx(t), deadKey, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, dead, 2)
	assert.Equal(t, d1, dead[0].ID)
	assert.Equal(t, d3, dead[1].ID)

	// Replaying it again finds nothing and writes nothing.
	o = cli(t, srv.URL(), "dead", "replay", d2)
	assert.Equal(t, 1, o.code)
	assert.Contains(t, o.stderr, "already replayed")
	n, err := c.XLen(tctx(t), jobsKey).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)

	// Replay the rest.
	o = cli(t, srv.URL(), "dead", "replay", "--all")
	requireOK(t, o)
	lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
	require.Len(t, lines, 3)
	assert.Regexp(t, `^DEAD_ID\s+ORIGINAL_ID\s+NEW_JOB_ID$`, lines[0])
	assert.Regexp(t, "^"+d1+`\s+100-0\s+[0-9]+-[0-9]+$`, lines[1])
	assert.Regexp(t, "^"+d3+`\s+102-0\s+[0-9]+-[0-9]+$`, lines[2])
	jobs, err = c.XRange(tctx(t), jobsKey, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, jobs, 3)
	assert.Equal(t, map[string]any{"game_id": "g-7f3a2c", "reason": "vacation"}, jobs[1].Values)
	assert.Equal(t, map[string]any{"reason": "admin_request"}, jobs[2].Values)
	n, err = c.XLen(tctx(t), deadKey).Result()
	require.NoError(t, err)
	assert.Zero(t, n)

	o = cli(t, srv.URL(), "dead", "replay", "--all", "--json")
	requireOK(t, o)
	assert.Empty(t, decode[[]replayView](t, o.stdout))
}

// Concurrent replays of the same dead letters put each back exactly once.
func TestDeadReplayConcurrentIsNotDoubled(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()
	const letters = 20
	for i := 0; i < letters; i++ {
		addDead(t, c, "dead_reason", "invalid", "dead_error", "e", "original_id", fmt.Sprintf("%d-0", i+1),
			"delivery_count", "1", "dead_at_ms", "1", "game_id", fmt.Sprint("g", i), "reason", "game_finished")
	}
	var wg sync.WaitGroup
	codes := make([]outcome, 3)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = cliCtx(context.Background(), srv.URL(), "dead", "replay", "--all")
		}()
	}
	wg.Wait()
	for _, o := range codes {
		assert.Equal(t, 0, o.code, o.stderr)
	}
	jobs, err := c.XRange(tctx(t), jobsKey, "-", "+").Result()
	require.NoError(t, err)
	seen := map[string]int{}
	for _, j := range jobs {
		seen[j.Values["game_id"].(string)]++
	}
	assert.Len(t, seen, letters)
	for g, n := range seen {
		assert.Equal(t, 1, n, g)
	}
	n, err := c.XLen(tctx(t), deadKey).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
}
