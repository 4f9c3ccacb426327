package stopruntime_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/stopruntime"
)

var ctx = context.Background()

func TestNotFound(t *testing.T) {
	e := newEnv(t)
	res, err := e.svc.Handle(ctx, job("g-unknown", "1-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.Result{
		Outcome: stopruntime.OutcomeFailure, ErrorCode: stopruntime.CodeNotFound,
		ErrorMessage: "no runtime record for game g-unknown", Record: stopruntime.Record{GameID: "g-unknown"},
	}, res)
	// No record is created by asking.
	n, err := e.rdb.Exists(ctx, "rtmanager:runtime:{g-unknown}").Result()
	require.NoError(t, err)
	assert.Zero(t, n)
	ops := e.ops(t)
	require.Len(t, ops, 1)
	assert.Equal(t, "failure", ops[0]["outcome"])
	assert.Equal(t, "not_found", ops[0]["error_code"])
	assert.Empty(t, e.docker.Calls())
}

func TestStopThenRedeliveryAnswersIdentically(t *testing.T) {
	e := newEnv(t)
	e.register(t, "g-7f3a2c", "", "4f1c9a0e2b7d")
	e.clock.Advance(time.Second)

	in := job("g-7f3a2c", "1764160000000-0")
	in.RequestedAtMS = 1764160000000
	first, err := e.svc.Handle(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, first.Outcome)
	assert.Equal(t, stopruntime.CodeNone, first.ErrorCode)
	assert.Empty(t, first.ErrorMessage)
	assert.Equal(t, "4f1c9a0e2b7d", first.Record.ContainerID)
	assert.Equal(t, "10.0.3.17:7000", first.Record.EngineEndpoint)
	assert.Equal(t, stopruntime.StatusStopped, first.Record.Status)
	assert.Equal(t, "1764160000000-0", first.Record.LastJobID)
	assert.Empty(t, first.Record.StoppingJobID)
	assert.Equal(t, []call{{"4f1c9a0e2b7d", 7 * time.Second}}, e.docker.Calls())

	// The raw hash, as docs/persistence.md describes it.
	h, err := e.rdb.HGetAll(ctx, "rtmanager:runtime:{g-7f3a2c}").Result()
	require.NoError(t, err)
	assert.Equal(t, "stopped", h["status"])
	assert.Equal(t, "docker", h["runtime"])
	assert.Equal(t, fmt.Sprint(e.clock.MS()), h["updated_at_ms"])
	assert.NotContains(t, h, "stopping_job_id")
	var lr map[string]string
	require.NoError(t, json.Unmarshal([]byte(h["last_result"]), &lr))
	assert.Equal(t, map[string]string{"outcome": "success", "error_code": "", "error_message": "",
		"container_id": "4f1c9a0e2b7d", "engine_endpoint": "10.0.3.17:7000"}, lr)

	e.clock.Advance(time.Minute)
	again, err := e.svc.Handle(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, first, again)
	assert.Len(t, e.docker.Calls(), 1, "a redelivered job must not stop again")

	// One log entry per Handle.
	ops := e.ops(t)
	require.Len(t, ops, 2)
	assert.Equal(t, map[string]any{
		"game_id": "g-7f3a2c", "operation": "stop", "source": "lobby_stream", "source_ref": "1764160000000-0",
		"reason": "game_finished", "outcome": "success", "error_code": "", "error_message": "",
		"container_id": "4f1c9a0e2b7d", "requested_at_ms": "1764160000000",
		"started_at_ms": "1764160001000", "finished_at_ms": "1764160001000",
	}, ops[0])
	assert.Equal(t, "success", ops[1]["outcome"])
}

func TestReplayOfStoppedAndRemoved(t *testing.T) {
	e := newEnv(t)
	e.register(t, "g-stopped", stopruntime.StatusStopped, "c-1")
	e.register(t, "g-removed", stopruntime.StatusRemoved, "c-2")

	res, err := e.svc.Handle(ctx, job("g-stopped", "1-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, res.Outcome)
	assert.Equal(t, stopruntime.CodeReplayNoOp, res.ErrorCode)
	assert.Equal(t, "runtime already stopped", res.ErrorMessage)
	assert.Equal(t, "c-1", res.Record.ContainerID)
	assert.Equal(t, "10.0.3.17:7000", res.Record.EngineEndpoint)

	res, err = e.svc.Handle(ctx, job("g-removed", "2-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, res.Outcome)
	assert.Equal(t, stopruntime.CodeReplayNoOp, res.ErrorCode)
	assert.Empty(t, res.Record.ContainerID, "removed answers with an empty container id")

	assert.Empty(t, e.docker.Calls())
	ops := e.ops(t)
	require.Len(t, ops, 2)
	assert.Equal(t, "replay_no_op", ops[1]["error_code"])
}

func TestConcurrentStopsStopOnce(t *testing.T) {
	e := newEnv(t)
	e.register(t, "g-1", "", "c-1")
	b := newBlocker()
	e.docker.steps = []func(context.Context) error{b.step}

	type answer struct {
		res stopruntime.Result
		err error
	}
	first := make(chan answer, 1)
	go func() {
		res, err := e.svc.Handle(ctx, job("g-1", "1-0"))
		first <- answer{res, err}
	}()
	<-b.entered

	// While job 1-0 stops the game, every other job is told busy.
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = e.svc.Handle(ctx, job("g-1", fmt.Sprintf("%d-0", i+2)))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		require.ErrorIs(t, err, stopruntime.ErrBusy)
	}
	assert.Len(t, e.docker.Calls(), 1)
	assert.Equal(t, stopruntime.StatusStopping, e.get(t, "g-1").Status)

	close(b.release)
	a := <-first
	require.NoError(t, a.err)
	assert.Equal(t, stopruntime.OutcomeSuccess, a.res.Outcome)

	// The busy job's retry finds the game stopped.
	res, err := e.svc.Handle(ctx, job("g-1", "2-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.CodeReplayNoOp, res.ErrorCode)
	assert.Len(t, e.docker.Calls(), 1, "exactly one driver Stop")

	ops := e.ops(t)
	require.Len(t, ops, 10)
	busy := 0
	for _, op := range ops {
		if op["error_code"] == "busy" {
			busy++
			assert.Equal(t, "error", op["outcome"])
		}
	}
	assert.Equal(t, 8, busy)
}

func TestTransientErrorKeepsStoppingAndRetryResumes(t *testing.T) {
	e := newEnv(t)
	e.register(t, "g-1", "", "c-1")
	e.docker.steps = []func(context.Context) error{
		returns(fmt.Errorf("daemon unreachable: %w", stopruntime.ErrTransient)),
		returns(nil),
	}
	_, err := e.svc.Handle(ctx, job("g-1", "1-0"))
	require.ErrorIs(t, err, stopruntime.ErrTransient)
	rec := e.get(t, "g-1")
	assert.Equal(t, stopruntime.StatusStopping, rec.Status)
	assert.Equal(t, "1-0", rec.StoppingJobID)
	assert.Equal(t, e.clock.MS(), rec.StoppingSinceMS)

	// Another job must wait for it.
	_, err = e.svc.Handle(ctx, job("g-1", "2-0"))
	require.ErrorIs(t, err, stopruntime.ErrBusy)

	// The same job's retry resumes the stop.
	res, err := e.svc.Handle(ctx, job("g-1", "1-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, res.Outcome)
	assert.Equal(t, stopruntime.StatusStopped, res.Record.Status)
	assert.Len(t, e.docker.Calls(), 2)

	ops := e.ops(t)
	require.Len(t, ops, 3)
	assert.Equal(t, "transient", ops[0]["error_code"])
	assert.Equal(t, "success", ops[2]["outcome"])
}

func TestDriverDeadlineIsTransient(t *testing.T) {
	e := newEnv(t)
	e.register(t, "g-1", "", "c-1")
	hang := &fakeDriver{steps: []func(context.Context) error{func(ctx context.Context) error {
		<-ctx.Done() // a daemon that never answers
		return ctx.Err()
	}}}
	svc, err := stopruntime.New(e.store, map[string]stopruntime.Driver{"docker": hang}, stopruntime.Options{
		StopGrace: 10 * time.Millisecond, StopMargin: 40 * time.Millisecond, TakeoverAfter: time.Second, Now: e.clock.Now,
	})
	require.NoError(t, err)
	began := time.Now()
	_, err = svc.Handle(ctx, job("g-1", "1-0"))
	require.ErrorIs(t, err, stopruntime.ErrTransient)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(began), 5*time.Second)
	rec := e.get(t, "g-1")
	assert.Equal(t, stopruntime.StatusStopping, rec.Status)
	assert.Equal(t, "1-0", rec.StoppingJobID)
}

func TestGoneIsSuccess(t *testing.T) {
	e := newEnv(t)
	e.register(t, "g-1", "", "c-1")
	e.docker.steps = []func(context.Context) error{returns(fmt.Errorf("no such container: %w", stopruntime.ErrGone))}
	res, err := e.svc.Handle(ctx, job("g-1", "1-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, res.Outcome)
	assert.Equal(t, stopruntime.CodeNone, res.ErrorCode)
	assert.Equal(t, stopruntime.StatusStopped, e.get(t, "g-1").Status)
}

func TestPermanentErrorFails(t *testing.T) {
	e := newEnv(t)
	e.register(t, "g-1", "", "c-1")
	e.docker.steps = []func(context.Context) error{returns(errors.New("cannot stop container: permission denied")), returns(nil)}

	first, err := e.svc.Handle(ctx, job("g-1", "1-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeFailure, first.Outcome)
	assert.Equal(t, stopruntime.CodeStopFailed, first.ErrorCode)
	assert.Equal(t, "cannot stop container: permission denied", first.ErrorMessage)
	assert.Equal(t, "c-1", first.Record.ContainerID)
	assert.Equal(t, stopruntime.StatusFailed, e.get(t, "g-1").Status)

	// Redelivery: the same failure, no second attempt.
	again, err := e.svc.Handle(ctx, job("g-1", "1-0"))
	require.NoError(t, err)
	assert.Equal(t, first, again)
	assert.Len(t, e.docker.Calls(), 1)

	// A new job tries a failed runtime again.
	res, err := e.svc.Handle(ctx, job("g-1", "2-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, res.Outcome)
	assert.Len(t, e.docker.Calls(), 2)
	assert.Equal(t, "stop_failed", e.ops(t)[0]["error_code"])
}

func TestCrashBetweenDriverStopAndFinishResumes(t *testing.T) {
	var flaky *flakyFinish
	e := newEnvWith(t, func(s stopruntime.Store) stopruntime.Store {
		flaky = &flakyFinish{Store: s}
		return flaky
	})
	e.register(t, "g-1", "", "c-1")
	// The runtime was stopped by the first call; the second finds it gone.
	e.docker.steps = []func(context.Context) error{returns(nil), returns(stopruntime.ErrGone)}

	_, err := e.svc.Handle(ctx, job("g-1", "1-0"))
	require.ErrorContains(t, err, "simulated crash")
	rec := e.get(t, "g-1")
	assert.Equal(t, stopruntime.StatusStopping, rec.Status)
	assert.Equal(t, "1-0", rec.StoppingJobID)

	e.clock.Advance(5 * time.Second)
	res, err := e.svc.Handle(ctx, job("g-1", "1-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, res.Outcome)
	assert.Equal(t, stopruntime.CodeNone, res.ErrorCode)
	assert.Equal(t, "c-1", res.Record.ContainerID)
	assert.Equal(t, stopruntime.StatusStopped, res.Record.Status)
	assert.Equal(t, "1-0", res.Record.LastJobID)
	assert.Len(t, e.docker.Calls(), 2)

	again, err := e.svc.Handle(ctx, job("g-1", "1-0"))
	require.NoError(t, err)
	assert.Equal(t, res, again)
}

func TestStaleStopIsTakenOver(t *testing.T) {
	e := newEnv(t)
	e.register(t, "g-1", "", "c-1")
	b := newBlocker()
	e.docker.steps = []func(context.Context) error{b.step, returns(nil)}

	// Job A hangs in the driver (as if its replica were gone).
	aDone := make(chan error, 1)
	go func() {
		_, err := e.svc.Handle(ctx, job("g-1", "A-0"))
		aDone <- err
	}()
	<-b.entered

	e.clock.Advance(2*time.Minute - time.Millisecond)
	_, err := e.svc.Handle(ctx, job("g-1", "B-0"))
	require.ErrorIs(t, err, stopruntime.ErrBusy, "not stale yet")

	e.clock.Advance(time.Millisecond)
	res, err := e.svc.Handle(ctx, job("g-1", "B-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, res.Outcome)
	assert.Equal(t, "B-0", res.Record.LastJobID)

	// A wakes up: its stop was taken over, so it must not overwrite B's result.
	close(b.release)
	require.ErrorIs(t, <-aDone, stopruntime.ErrBusy)
	assert.Equal(t, "B-0", e.get(t, "g-1").LastJobID)

	// A's retry finds the game stopped.
	res, err = e.svc.Handle(ctx, job("g-1", "A-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.CodeReplayNoOp, res.ErrorCode)
	assert.Len(t, e.docker.Calls(), 2)
}

func TestBadGameIDsRefusedBeforeAnyKey(t *testing.T) {
	var counting *countingStore
	e := newEnvWith(t, func(s stopruntime.Store) stopruntime.Store {
		counting = &countingStore{Store: s}
		return counting
	})
	bad := []string{"a}b", "x:y{z}", "", strings.Repeat("a", 4096), "a\nb", "{g}", "-g", "g/1", "g 1", " g", strings.Repeat("a", 129)}
	for _, id := range bad {
		require.Error(t, stopruntime.ValidateGameID(id), "%q", id)
		res, err := e.svc.Handle(ctx, job(id, "1-0"))
		require.NoError(t, err)
		assert.Equal(t, stopruntime.OutcomeFailure, res.Outcome)
		assert.Equal(t, stopruntime.CodeInvalidJob, res.ErrorCode)

		_, err = e.svc.Register(ctx, stopruntime.Record{GameID: id, Runtime: "none"})
		require.ErrorIs(t, err, stopruntime.ErrInvalid)
		_, _, err = e.svc.Get(ctx, id)
		require.Error(t, err)
	}
	assert.Zero(t, counting.keyed.Load(), "no store call that builds a key")
	keys, err := e.rdb.Keys(ctx, "*").Result()
	require.NoError(t, err)
	assert.Equal(t, []string{"rtmanager:operations"}, keys)

	// The store refuses them too, should anyone call it directly.
	_, err = e.store.BeginStop(ctx, stopruntime.BeginRequest{GameID: "a}b", JobID: "1-0"})
	require.Error(t, err)

	for _, id := range []string{"g", "g-7f3a2c", "galaxy.eu-1:42", strings.Repeat("a", 128), "0_x"} {
		require.NoError(t, stopruntime.ValidateGameID(id), id)
	}
}

func TestInvalidReasonAndSource(t *testing.T) {
	e := newEnv(t)
	e.register(t, "g-1", "", "c-1")
	in := job("g-1", "1-0")
	in.Reason = "vacation"
	res, err := e.svc.Handle(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, stopruntime.CodeInvalidJob, res.ErrorCode)

	in = job("g-1", "1-0")
	in.OpSource = "cron"
	res, err = e.svc.Handle(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, stopruntime.CodeInvalidJob, res.ErrorCode)
	assert.Empty(t, e.docker.Calls())
	assert.Equal(t, stopruntime.StatusRunning, e.get(t, "g-1").Status)

	for _, r := range []string{"game_finished", "lobby_cancelled", "admin_request", "idle_timeout", "platform_shutdown"} {
		assert.True(t, stopruntime.KnownReason(r))
	}
	assert.False(t, stopruntime.KnownReason(""))
}

func TestAdminStopWithoutSourceRef(t *testing.T) {
	e := newEnv(t)
	_, err := e.svc.Register(ctx, stopruntime.Record{GameID: "g-1", Runtime: stopruntime.RuntimeNone})
	require.NoError(t, err)
	in := stopruntime.Input{GameID: "g-1", Reason: "admin_request", OpSource: stopruntime.OpSourceAdmin}
	res, err := e.svc.Handle(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, res.Outcome)
	assert.True(t, strings.HasPrefix(res.Record.LastJobID, "admin-"), res.Record.LastJobID)

	res, err = e.svc.Handle(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, stopruntime.CodeReplayNoOp, res.ErrorCode)
	assert.Equal(t, "admin", e.ops(t)[0]["source"])
}

func TestMissingDriverFailsInternal(t *testing.T) {
	e := newEnv(t)
	_, err := e.svc.Register(ctx, stopruntime.Record{GameID: "g-1", Runtime: stopruntime.RuntimeProcess, ContainerID: "pid:99:start:1"})
	require.NoError(t, err)
	res, err := e.svc.Handle(ctx, job("g-1", "1-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeFailure, res.Outcome)
	assert.Equal(t, stopruntime.CodeInternal, res.ErrorCode)
	assert.Contains(t, res.ErrorMessage, `no driver for runtime "process"`)
	assert.Equal(t, stopruntime.StatusFailed, e.get(t, "g-1").Status)
}

func TestRegisterRules(t *testing.T) {
	e := newEnv(t)
	for _, rec := range []stopruntime.Record{
		{GameID: "g", Runtime: "vm"},
		{GameID: "g", Runtime: "docker"}, // no container id
		{GameID: "g", Runtime: "none", Status: "stopping"},
		{GameID: "g", Runtime: "none", Status: "paused"},
	} {
		_, err := e.svc.Register(ctx, rec)
		require.ErrorIs(t, err, stopruntime.ErrInvalid, "%+v", rec)
	}

	// Register refuses to clobber a stop in progress.
	e.register(t, "g-1", "", "c-1")
	e.docker.steps = []func(context.Context) error{returns(stopruntime.ErrTransient), returns(nil)}
	_, err := e.svc.Handle(ctx, job("g-1", "1-0"))
	require.ErrorIs(t, err, stopruntime.ErrTransient)
	_, err = e.svc.Register(ctx, stopruntime.Record{GameID: "g-1", Runtime: "docker", ContainerID: "c-2"})
	require.ErrorIs(t, err, stopruntime.ErrBusy)

	// After the stop, a new runtime may be registered; the last result stays,
	// so a redelivered old job still gets its answer and stops nothing.
	first, err := e.svc.Handle(ctx, job("g-1", "1-0"))
	require.NoError(t, err)
	rec, err := e.svc.Register(ctx, stopruntime.Record{GameID: "g-1", Runtime: "docker", ContainerID: "c-2", EngineEndpoint: "10.0.3.18:7000"})
	require.NoError(t, err)
	assert.Equal(t, stopruntime.StatusRunning, rec.Status)
	assert.Equal(t, "1-0", rec.LastJobID)
	again, err := e.svc.Handle(ctx, job("g-1", "1-0"))
	require.NoError(t, err)
	assert.Equal(t, first.Outcome, again.Outcome)
	assert.Equal(t, "c-1", again.Record.ContainerID)
	assert.Len(t, e.docker.Calls(), 2)

	_, ok, err := e.svc.Get(ctx, "g-none")
	require.NoError(t, err)
	assert.False(t, ok)
}

func TestRedisErrorsAreGoErrors(t *testing.T) {
	e := newEnv(t)
	e.register(t, "g-1", "", "c-1")
	require.NoError(t, e.srv.Close())
	_, err := e.svc.Handle(ctx, job("g-1", "1-0"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "begin")
	assert.NotErrorIs(t, err, stopruntime.ErrBusy)
}

// roundTrips counts what reaches Redis: one per command or pipeline.
type roundTrips struct {
	n     int
	names []string
}

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n++
		r.names = append(r.names, cmd.Name())
		return next(ctx, cmd)
	}
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n++
		r.names = append(r.names, fmt.Sprint(len(cmds), "-pipeline"))
		return next(ctx, cmds)
	}
}

func TestHappyPathIsTwoRoundTrips(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, e.store.Preload(ctx))
	for _, g := range []string{"g-0", "g-1"} {
		_, err := e.svc.Register(ctx, stopruntime.Record{GameID: g, Runtime: stopruntime.RuntimeNone})
		require.NoError(t, err)
	}
	// Warm the connection pool: a new connection's handshake is not the
	// stop's cost.
	_, err := e.svc.Handle(ctx, job("g-0", "0-0"))
	require.NoError(t, err)
	rt := &roundTrips{}
	e.rdb.AddHook(rt)
	res, err := e.svc.Handle(ctx, job("g-1", "1-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, res.Outcome)
	assert.Equal(t, 2, rt.n, "begin script, then finish script + log entry in one pipeline: %v", rt.names)
}

func TestNewRejectsShortTakeover(t *testing.T) {
	e := newEnv(t)
	_, err := stopruntime.New(e.store, nil, stopruntime.Options{StopGrace: time.Minute, TakeoverAfter: time.Minute})
	require.Error(t, err)
	_, err = stopruntime.New(nil, nil, stopruntime.Options{})
	require.Error(t, err)
}
