package runtimewatch_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/runtimewatch"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

const events = "runtime:events"

type env struct {
	recs  atomic.Int64 // reconciliations done, by every watcher of the test
	rdb   *redis.Client
	store *runtimestore.Store
	drv   *process.Driver
	ch    *api.Channel
}

func setup(t *testing.T) *env {
	t.Helper()
	srv := testredis.Start(t)
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	doc, err := api.Load()
	require.NoError(t, err)
	ch, ok := doc.ChannelByAddress(events)
	require.True(t, ok)
	return &env{rdb: rdb, store: runtimestore.New(rdb, runtimestore.Options{}), drv: process.New(process.Options{}), ch: ch}
}

// watcher starts a watcher with fast intervals.
func (e *env) watcher(t *testing.T, mod func(*runtimewatch.Options)) *runtimewatch.Watcher {
	t.Helper()
	return e.watcherOn(t, e.store, mod)
}

// watcherOn is watcher on a store of the test's own.
func (e *env) watcherOn(t *testing.T, store runtimewatch.Store, mod func(*runtimewatch.Options)) *runtimewatch.Watcher {
	t.Helper()
	opts := runtimewatch.Options{
		Drivers:           map[string]runtimewatch.Inspector{stopruntime.RuntimeProcess: e.drv},
		ReconcileInterval: 200 * time.Millisecond,
		ProbeInterval:     100 * time.Millisecond,
		ProbeTimeout:      50 * time.Millisecond,
		Events:            e.ch,
		Metrics:           (*counter)(e),
	}
	if mod != nil {
		mod(&opts)
	}
	w, err := runtimewatch.New(store, opts)
	require.NoError(t, err)
	w.Start()
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	return w
}

// counter counts reconciliations (runtimewatch.Metrics).
type counter env

func (*counter) RuntimeEvent(string) {}
func (*counter) ProbeFailed()        {}
func (c *counter) Reconciled(time.Duration, map[string]int) {
	c.recs.Add(1)
}

// settle waits until every watcher of the test has reconciled twice more:
// whatever they would write about what happened before, they have.
func (e *env) settle(t *testing.T, watchers int) {
	t.Helper()
	target := e.recs.Load() + int64(2*watchers)
	require.Eventually(t, func() bool { return e.recs.Load() >= target }, 10*time.Second, 10*time.Millisecond)
}

// register records a running process game.
func (e *env) register(t *testing.T, game, containerID, endpoint string) stopruntime.Record {
	t.Helper()
	rec, err := e.store.Register(context.Background(), stopruntime.Record{GameID: game, Status: "running",
		ContainerID: containerID, EngineEndpoint: endpoint, Runtime: stopruntime.RuntimeProcess, UpdatedAtMS: 1})
	require.NoError(t, err)
	return rec
}

// sleeper starts a process that runs until killed, as a child of the
// driver (a started engine).
func (e *env) sleeper(t *testing.T, game string) string {
	t.Helper()
	id, _, err := e.drv.Start(context.Background(), process.StartSpec{GameID: game, JobID: "1-0", Command: []string{"sleep", "600"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = e.drv.Stop(context.Background(), id, 0) })
	return id
}

func kill(t *testing.T, containerID string) {
	t.Helper()
	pid, _, err := process.ParseID(containerID)
	require.NoError(t, err)
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
}

func (e *env) events(t *testing.T) []redis.XMessage {
	t.Helper()
	msgs, err := e.rdb.XRange(context.Background(), events, "-", "+").Result()
	require.NoError(t, err)
	return msgs
}

func (e *env) waitEvents(t *testing.T, n int) []redis.XMessage {
	t.Helper()
	require.Eventually(t, func() bool { return len(e.events(t)) >= n }, 10*time.Second, 10*time.Millisecond, "%d events", n)
	return e.events(t)
}

func (e *env) status(t *testing.T, game string) stopruntime.Record {
	t.Helper()
	rec, ok, err := e.store.Get(context.Background(), game)
	require.NoError(t, err)
	require.True(t, ok)
	return rec
}

// An engine killed by SIGKILL is reported at once (its reaper tells the
// watch), with the signal as exit code 128+9, and its record says exited.
func TestKilledEngineIsReportedOnce(t *testing.T) {
	e := setup(t)
	w := e.watcher(t, func(o *runtimewatch.Options) { o.ReconcileInterval = time.Hour }) // only the exit wait
	id := e.sleeper(t, "g1")
	w.Watch(e.register(t, "g1", id, ""))
	killed := time.Now()
	kill(t, id)
	msgs := e.waitEvents(t, 1)
	t.Logf("event %s after the kill", time.Since(killed))
	assert.Equal(t, map[string]any{"game_id": "g1", "container_id": id, "type": "engine_exited",
		"prev_status": "running", "status": "exited", "exit_code": "137",
		"reason": msgs[0].Values["reason"], "at_ms": msgs[0].Values["at_ms"]}, msgs[0].Values)
	assert.Contains(t, msgs[0].Values["reason"], "signal 9")
	rec := e.status(t, "g1")
	assert.Equal(t, "exited", rec.Status)
	require.NotNil(t, rec.ExitCode)
	assert.Equal(t, int64(137), *rec.ExitCode)

	// A stop job for it now is a replay.
	b, err := e.store.BeginStop(context.Background(), stopruntime.BeginRequest{GameID: "g1", JobID: "5-0", NowMS: 10, TakeoverMS: 1000})
	require.NoError(t, err)
	assert.Equal(t, stopruntime.BeginReplay, b.Verdict)
	assert.Len(t, e.events(t), 1)
}

// A process that is not rtmanager's child (registered by an operator) is
// waited for through a pidfd: reported, with no exit code (its status went
// to its own parent).
func TestRegisteredProcessExitHasNoCode(t *testing.T) {
	e := setup(t)
	cmd := exec.Command("sleep", "600")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	id, err := process.IDForPID(cmd.Process.Pid)
	require.NoError(t, err)
	e.register(t, "g2", id, "")
	e.watcher(t, nil) // found by the first reconciliation
	e.settle(t, 1)
	require.NoError(t, cmd.Process.Kill())
	msgs := e.waitEvents(t, 1)
	assert.Equal(t, "engine_exited", msgs[0].Values["type"])
	assert.NotContains(t, msgs[0].Values, "exit_code")
}

// An engine that stops accepting connections becomes unhealthy after
// FailureThreshold failed checks, and healthy again when it answers.
func TestUnhealthyThenHealthy(t *testing.T) {
	e := setup(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	go acceptAll(ln)
	id := e.sleeper(t, "g3")
	e.register(t, "g3", id, addr)
	e.watcher(t, nil)
	e.settle(t, 1) // and probes every 100ms meanwhile
	assert.Empty(t, e.events(t), "healthy engine: no event")

	require.NoError(t, ln.Close())
	msgs := e.waitEvents(t, 1)
	assert.Equal(t, "unhealthy", msgs[0].Values["type"])
	assert.Equal(t, "running", msgs[0].Values["prev_status"])
	assert.Contains(t, msgs[0].Values["reason"], "3 health checks failed in a row")
	assert.Equal(t, "unhealthy", e.status(t, "g3").Status)

	ln, err = net.Listen("tcp", addr)
	require.NoError(t, err)
	defer ln.Close()
	go acceptAll(ln)
	msgs = e.waitEvents(t, 2)
	assert.Equal(t, "healthy", msgs[1].Values["type"])
	assert.Equal(t, "running", msgs[1].Values["status"])
	assert.Equal(t, "running", e.status(t, "g3").Status)
	e.settle(t, 1)
	assert.Len(t, e.events(t), 2, "one event per change")
}

func acceptAll(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		_ = c.Close()
	}
}

// Engines that die while no watch runs are reported by the next one's
// first reconciliation, once; a second watch started later reports none.
func TestExitsWhileDownAreReportedAfterRestart(t *testing.T) {
	e := setup(t)
	var cmds []*exec.Cmd
	for i := range 3 {
		cmd := exec.Command("sleep", "600")
		require.NoError(t, cmd.Start())
		cmds = append(cmds, cmd)
		id, err := process.IDForPID(cmd.Process.Pid)
		require.NoError(t, err)
		e.register(t, "g"+strconv.Itoa(i), id, "")
	}
	for _, c := range cmds {
		require.NoError(t, c.Process.Kill())
		_, _ = c.Process.Wait()
	}
	e.watcher(t, nil)
	msgs := e.waitEvents(t, 3)
	games := map[any]int{}
	for _, m := range msgs {
		games[m.Values["game_id"]]++
	}
	assert.Equal(t, map[any]int{"g0": 1, "g1": 1, "g2": 1}, games)
	e.watcher(t, nil)
	e.settle(t, 2)
	assert.Len(t, e.events(t), 3, "no duplicate from a second watch")
}

// Three replicas watching the same games write one event per exit.
func TestReplicasWriteOneEventPerExit(t *testing.T) {
	e := setup(t)
	const n = 10
	var ids []string
	for i := range n {
		id := e.sleeper(t, "r"+strconv.Itoa(i))
		ids = append(ids, id)
		e.register(t, "r"+strconv.Itoa(i), id, "")
	}
	for range 3 {
		e.watcher(t, nil)
	}
	e.settle(t, 3) // each watches every game
	for _, id := range ids {
		kill(t, id)
	}
	e.waitEvents(t, n)
	e.settle(t, 3)
	msgs := e.events(t)
	games := map[any]int{}
	for _, m := range msgs {
		games[m.Values["game_id"]]++
	}
	assert.Len(t, games, n)
	for g, c := range games {
		assert.Equal(t, 1, c, "game %v", g)
	}
}

// A stop job that owns the game when its engine exits decides the outcome:
// no event.
func TestExitDuringStopIsTheStops(t *testing.T) {
	e := setup(t)
	id := e.sleeper(t, "g4")
	e.register(t, "g4", id, "")
	e.watcher(t, nil)
	e.settle(t, 1)
	_, err := e.store.BeginStop(context.Background(), stopruntime.BeginRequest{GameID: "g4", JobID: "7-0", NowMS: 10, TakeoverMS: 60000})
	require.NoError(t, err)
	kill(t, id)
	e.settle(t, 1)
	assert.Empty(t, e.events(t))
	assert.Equal(t, "stopping", e.status(t, "g4").Status)
}

// A profile with a health path is checked with an HTTP GET: a 503 answer
// counts as a failure although the port accepts connections.
func TestHTTPHealthPath(t *testing.T) {
	e := setup(t)
	var code atomic.Int32
	code.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(int(code.Load()))
	}))
	defer srv.Close()
	id := e.sleeper(t, "gh")
	_, err := e.store.Register(context.Background(), stopruntime.Record{GameID: "gh", Status: "running",
		ContainerID: id, EngineEndpoint: strings.TrimPrefix(srv.URL, "http://"), Runtime: stopruntime.RuntimeProcess})
	require.NoError(t, err)
	// Register keeps no engine: name it as a start job would have.
	require.NoError(t, e.rdb.HSet(context.Background(), e.store.RecordKey("gh"), "engine", "web").Err())
	e.watcher(t, func(o *runtimewatch.Options) {
		o.HealthPath = func(engine string) string {
			if engine == "web" {
				return "/healthz"
			}
			return ""
		}
	})
	e.settle(t, 1)
	assert.Empty(t, e.events(t))
	code.Store(http.StatusServiceUnavailable)
	msgs := e.waitEvents(t, 1)
	assert.Equal(t, "unhealthy", msgs[0].Values["type"])
	assert.Contains(t, msgs[0].Values["reason"], "503")
	code.Store(http.StatusOK)
	msgs = e.waitEvents(t, 2)
	assert.Equal(t, "healthy", msgs[1].Values["type"])
}
