package startruntime_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/engines"
	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/startruntime"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// A real engine: listens on the chosen port within a second.
var listening = []string{"python3", "-c", "import socket,os,time\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('127.0.0.1',int(os.environ['PORT'])))\ns.listen(16)\nwhile True: time.sleep(1)"}

type env struct {
	rdb   *redis.Client
	store *runtimestore.Store
	proc  *process.Driver
	svc   *startruntime.Service
	stop  *stopruntime.Service
	now   atomic.Int64
}

func newEnv(t *testing.T, timeout time.Duration) *env {
	t.Helper()
	srv := testredis.Start(t)
	e := &env{rdb: srv.Client(), proc: process.New(process.Options{})}
	t.Cleanup(func() { e.rdb.Close() })
	e.now.Store(time.Now().UnixMilli())
	e.store = runtimestore.New(e.rdb, runtimestore.Options{})
	profiles, err := engines.New(
		engines.Profile{Name: "demo", Runtime: "process", Command: listening},
		engines.Profile{Name: "deaf", Runtime: "process", Command: []string{"sleep", "60"}},
		engines.Profile{Name: "chess", Runtime: "docker", Image: "x", Port: 7000},
	)
	require.NoError(t, err)
	clock := func() time.Time { return time.UnixMilli(e.now.Load()) }
	e.svc, err = startruntime.New(e.store, profiles, map[string]startruntime.Driver{
		"process": startruntime.Process{D: e.proc, Grace: time.Second},
	}, startruntime.Options{StartTimeout: timeout, Now: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	e.stop, err = stopruntime.New(e.store, map[string]stopruntime.Driver{"process": e.proc},
		stopruntime.Options{StopGrace: time.Second, Now: clock, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	return e
}

// live counts the processes labelled with the game; cleanup kills them.
func (e *env) live(t *testing.T, game string) []process.Found {
	t.Helper()
	f, err := e.proc.Find(game, "")
	require.NoError(t, err)
	return f
}

func (e *env) cleanup(t *testing.T, games ...string) {
	t.Cleanup(func() {
		for _, g := range games {
			f, _ := e.proc.Find(g, "")
			for _, p := range f {
				_ = e.proc.Stop(context.Background(), p.ContainerID, time.Second)
			}
		}
	})
}

func reachable(endpoint string) bool {
	c, err := net.DialTimeout("tcp", endpoint, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

func in(game, engine, job string) startruntime.Input {
	return startruntime.Input{GameID: game, Engine: engine, JobID: job}
}

// start → running with a reachable endpoint; the same job again gets the
// identical answer; another job gets replay_no_op with the same container
// and endpoint; one process only.
func TestStartAnswersOnceAndReplays(t *testing.T) {
	e := newEnv(t, 20*time.Second)
	e.cleanup(t, "g1")
	ctx := context.Background()
	res, err := e.svc.Handle(ctx, in("g1", "demo", "1-0"))
	require.NoError(t, err)
	require.Equal(t, stopruntime.OutcomeSuccess, res.Outcome, res.ErrorMessage)
	assert.Empty(t, res.ErrorCode)
	assert.True(t, reachable(res.Record.EngineEndpoint))
	rec, ok, err := e.store.Get(ctx, "g1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, stopruntime.StatusRunning, rec.Status)
	assert.Equal(t, "demo", rec.Engine)
	assert.Equal(t, "process", rec.Runtime)
	assert.Equal(t, res.Record.ContainerID, rec.ContainerID)
	assert.Empty(t, rec.StartingJobID)

	again, err := e.svc.Handle(ctx, in("g1", "demo", "1-0"))
	require.NoError(t, err)
	assert.Equal(t, res.Outcome, again.Outcome)
	assert.Equal(t, res.ErrorCode, again.ErrorCode)
	assert.Equal(t, res.Record.ContainerID, again.Record.ContainerID)
	assert.Equal(t, res.Record.EngineEndpoint, again.Record.EngineEndpoint)

	replay, err := e.svc.Handle(ctx, in("g1", "demo", "2-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, replay.Outcome)
	assert.Equal(t, stopruntime.CodeReplayNoOp, replay.ErrorCode)
	assert.Equal(t, res.Record.ContainerID, replay.Record.ContainerID)
	assert.Equal(t, res.Record.EngineEndpoint, replay.Record.EngineEndpoint)
	assert.Len(t, e.live(t, "g1"), 1)

	// A stop job stops it; a start after the stop starts a new one.
	st, err := e.stop.Handle(ctx, stopruntime.Input{GameID: "g1", Reason: "game_finished", OpSource: stopruntime.OpSourceLobbyStream, SourceRef: "1-0"})
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, st.Outcome)
	assert.Empty(t, e.live(t, "g1"))
	res2, err := e.svc.Handle(ctx, in("g1", "demo", "3-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, res2.Outcome)
	assert.NotEqual(t, res.Record.ContainerID, res2.Record.ContainerID)
	assert.Len(t, e.live(t, "g1"), 1)
}

// An engine that never listens: start_failed after the timeout, the
// process removed, the record removed (a stop is then a replay).
func TestUnreachableEngineIsStartFailedAndRemoved(t *testing.T) {
	e := newEnv(t, time.Second)
	e.cleanup(t, "g2")
	res, err := e.svc.Handle(context.Background(), in("g2", "deaf", "1-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeFailure, res.Outcome)
	assert.Equal(t, stopruntime.CodeStartFailed, res.ErrorCode)
	assert.Contains(t, res.ErrorMessage, "did not accept connections")
	assert.Empty(t, res.Record.ContainerID)
	assert.Empty(t, e.live(t, "g2"))
	rec, _, err := e.store.Get(context.Background(), "g2")
	require.NoError(t, err)
	assert.Equal(t, stopruntime.StatusRemoved, rec.Status)
}

// Jobs name a profile, never a command: a path, an unknown profile or a
// profile whose runtime is not configured is invalid_job, and nothing
// runs or is recorded.
func TestInvalidStartJobsRunNothing(t *testing.T) {
	e := newEnv(t, time.Second)
	for _, tt := range []struct{ game, engine, want string }{
		{"g3", "../../bin/sh", "must match"},
		{"g3", "/bin/sh", "must match"},
		{"g3", "go", `no engine profile named "go"`},
		{"g3", "chess", "runtime docker is not available"},
		{"g 3", "demo", "must match"},
	} {
		res, err := e.svc.Handle(context.Background(), in(tt.game, tt.engine, "1-0"))
		require.NoError(t, err)
		assert.Equal(t, stopruntime.OutcomeFailure, res.Outcome)
		assert.Equal(t, stopruntime.CodeInvalidJob, res.ErrorCode)
		assert.Contains(t, res.ErrorMessage, tt.want)
	}
	_, ok, err := e.store.Get(context.Background(), "g3")
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Empty(t, e.live(t, "g3"))
}

// A start while stopping, and a stop while starting, are busy until the
// other finishes; a stale start is taken over by a stop.
func TestStartAndStopExcludeEachOther(t *testing.T) {
	e := newEnv(t, time.Second)
	ctx := context.Background()
	now := strconv.FormatInt(e.now.Load(), 10)
	require.NoError(t, e.rdb.HSet(ctx, e.store.RecordKey("g4"), "status", "stopping", "stopping_job_id", "9-0", "stopping_since_ms", now, "runtime", "process", "container_id", "pid:99999999:start:1").Err())
	_, err := e.svc.Handle(ctx, in("g4", "demo", "1-0"))
	require.ErrorIs(t, err, stopruntime.ErrBusy)
	assert.Empty(t, e.live(t, "g4"))

	v, _, _, err := e.store.BeginStart(ctx, "g5", "1-0", "demo", e.now.Load(), time.Minute.Milliseconds())
	require.NoError(t, err)
	require.Equal(t, runtimestore.StartStarted, v)
	stopIn := stopruntime.Input{GameID: "g5", Reason: "game_finished", OpSource: stopruntime.OpSourceLobbyStream, SourceRef: "5-0"}
	_, err = e.stop.Handle(ctx, stopIn)
	require.ErrorIs(t, err, stopruntime.ErrBusy)
	// Registering over a start is refused too.
	_, err = e.stop.Register(ctx, stopruntime.Record{GameID: "g5", Runtime: "none"})
	require.ErrorIs(t, err, stopruntime.ErrBusy)

	e.now.Add((3 * time.Minute).Milliseconds())
	res, err := e.stop.Handle(ctx, stopIn)
	require.NoError(t, err, "a stale start is taken over")
	assert.Equal(t, stopruntime.OutcomeFailure, res.Outcome, "the record names no runtime to stop")
	rec, _, err := e.store.Get(ctx, "g5")
	require.NoError(t, err)
	assert.Empty(t, rec.StartingJobID)
}

// kill -9 after the process was spawned but before the record knew it: the
// redelivered job adopts the process (no second one); a process another,
// stale attempt left behind is removed.
func TestResumeAdoptsTheCrashedAttemptsRuntime(t *testing.T) {
	e := newEnv(t, 20*time.Second)
	e.cleanup(t, "g6")
	ctx := context.Background()
	v, _, _, err := e.store.BeginStart(ctx, "g6", "1-0", "demo", e.now.Load(), time.Minute.Milliseconds())
	require.NoError(t, err)
	require.Equal(t, runtimestore.StartStarted, v)
	mine, _, err := e.proc.Start(ctx, process.StartSpec{GameID: "g6", JobID: "1-0", Command: listening})
	require.NoError(t, err)
	orphan, _, err := e.proc.Start(ctx, process.StartSpec{GameID: "g6", JobID: "0-9", Command: []string{"sleep", "60"}})
	require.NoError(t, err)
	require.Len(t, e.live(t, "g6"), 2)

	res, err := e.svc.Handle(ctx, in("g6", "demo", "1-0"))
	require.NoError(t, err)
	require.Equal(t, stopruntime.OutcomeSuccess, res.Outcome, res.ErrorMessage)
	assert.Equal(t, mine, res.Record.ContainerID, "adopted, not started again")
	live := e.live(t, "g6")
	require.Len(t, live, 1)
	assert.Equal(t, mine, live[0].ContainerID)
	alive, err := e.proc.Alive(orphan)
	require.NoError(t, err)
	assert.False(t, alive)
}

// A start another job left `starting` long ago (its rtmanager died and the
// job was dead-lettered) is taken over; a recent one is busy.
func TestStaleStartIsTakenOver(t *testing.T) {
	e := newEnv(t, 20*time.Second)
	e.cleanup(t, "g7")
	ctx := context.Background()
	_, _, _, err := e.store.BeginStart(ctx, "g7", "1-0", "demo", e.now.Load(), time.Minute.Milliseconds())
	require.NoError(t, err)
	_, err = e.svc.Handle(ctx, in("g7", "demo", "2-0"))
	require.ErrorIs(t, err, stopruntime.ErrBusy)
	e.now.Add((3 * time.Minute).Milliseconds())
	res, err := e.svc.Handle(ctx, in("g7", "demo", "2-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, res.Outcome, res.ErrorMessage)
	assert.Len(t, e.live(t, "g7"), 1)
}
