package runtimestore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

var ctx = context.Background()

func setup(t *testing.T, opts runtimestore.Options) (*redis.Client, *runtimestore.Store) {
	t.Helper()
	srv := testredis.Start(t)
	c := srv.Client()
	t.Cleanup(func() { _ = c.Close() })
	return c, runtimestore.New(c, opts)
}

func register(t *testing.T, s *runtimestore.Store, id string) {
	t.Helper()
	_, err := s.Register(ctx, stopruntime.Record{GameID: id, Status: "running", ContainerID: "c-" + id, EngineEndpoint: "e:1", Runtime: "docker", UpdatedAtMS: 100})
	require.NoError(t, err)
}

func op(id string) stopruntime.Operation {
	return stopruntime.Operation{GameID: id, Operation: "stop", Source: "admin", SourceRef: "r", Reason: "admin_request", Outcome: "success"}
}

func TestKeys(t *testing.T) {
	_, s := setup(t, runtimestore.Options{})
	assert.Equal(t, "rtmanager:runtime:{galaxy.eu-1:42}", s.RecordKey("galaxy.eu-1:42"))
	assert.Equal(t, "rtmanager:operations", s.OperationsKey())
	_, s = setup(t, runtimestore.Options{KeyPrefix: "test:"})
	assert.Equal(t, "test:runtime:{g}", s.RecordKey("g"))
	assert.Equal(t, "test:operations", s.OperationsKey())
}

func TestBeginVerdicts(t *testing.T) {
	c, s := setup(t, runtimestore.Options{})
	begin := func(id, job string, now int64) stopruntime.BeginResponse {
		t.Helper()
		r, err := s.BeginStop(ctx, stopruntime.BeginRequest{GameID: id, JobID: job, NowMS: now, TakeoverMS: 1000})
		require.NoError(t, err)
		return r
	}
	assert.Equal(t, stopruntime.BeginNotFound, begin("g", "1-0", 1).Verdict)

	register(t, s, "g")
	r := begin("g", "1-0", 200)
	assert.Equal(t, stopruntime.BeginStarted, r.Verdict)
	assert.Equal(t, stopruntime.Record{GameID: "g", Status: "stopping", ContainerID: "c-g", EngineEndpoint: "e:1",
		Runtime: "docker", UpdatedAtMS: 200, StoppingJobID: "1-0", StoppingSinceMS: 200}, r.Record)

	assert.Equal(t, stopruntime.BeginBusy, begin("g", "2-0", 1199).Verdict)
	r = begin("g", "1-0", 500)
	assert.Equal(t, stopruntime.BeginResumed, r.Verdict)
	assert.Equal(t, int64(500), r.Record.StoppingSinceMS, "a resumed stop is fresh again")
	assert.Equal(t, stopruntime.BeginBusy, begin("g", "2-0", 1499).Verdict)
	r = begin("g", "2-0", 1500)
	assert.Equal(t, stopruntime.BeginTakenOver, r.Verdict)
	assert.Equal(t, "1-0", r.Record.StoppingJobID, "reports whose stop was taken over")
	owner, err := c.HGet(ctx, s.RecordKey("g"), "stopping_job_id").Result()
	require.NoError(t, err)
	assert.Equal(t, "2-0", owner)

	fin, err := s.FinishStop(ctx, stopruntime.FinishRequest{GameID: "g", JobID: "2-0", NowMS: 1600, Status: "stopped",
		Result: stopruntime.StoredResult{Outcome: "success", ContainerID: "c-g", EngineEndpoint: "e:1"}}, op("g"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.FinishOK, fin.Verdict)
	assert.Equal(t, stopruntime.BeginDone, begin("g", "2-0", 1700).Verdict)
	assert.Equal(t, stopruntime.BeginReplay, begin("g", "3-0", 1700).Verdict)
}

func TestFinishVerdicts(t *testing.T) {
	c, s := setup(t, runtimestore.Options{})
	fin := func(id, job string) stopruntime.FinishResponse {
		t.Helper()
		r, err := s.FinishStop(ctx, stopruntime.FinishRequest{GameID: id, JobID: job, NowMS: 10, Status: "failed",
			Result: stopruntime.StoredResult{Outcome: "failure", ErrorCode: "stop_failed", ErrorMessage: "boom", ContainerID: "c-g"}}, op(id))
		require.NoError(t, err)
		return r
	}
	assert.Equal(t, stopruntime.FinishNotFound, fin("g", "1-0").Verdict)
	register(t, s, "g")
	assert.Equal(t, stopruntime.FinishLost, fin("g", "1-0").Verdict, "not stopping: nothing to finish")

	_, err := s.BeginStop(ctx, stopruntime.BeginRequest{GameID: "g", JobID: "1-0", NowMS: 5, TakeoverMS: 1000})
	require.NoError(t, err)
	assert.Equal(t, stopruntime.FinishLost, fin("g", "2-0").Verdict, "owned by another job")
	r := fin("g", "1-0")
	assert.Equal(t, stopruntime.FinishOK, r.Verdict)
	assert.Equal(t, "failed", r.Record.Status)
	assert.Equal(t, stopruntime.StoredResult{Outcome: "failure", ErrorCode: "stop_failed", ErrorMessage: "boom", ContainerID: "c-g"}, r.Record.LastResult)
	assert.Equal(t, stopruntime.FinishDone, fin("g", "1-0").Verdict)

	// Every finish logged an entry in the same pipeline.
	n, err := c.XLen(ctx, s.OperationsKey()).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(5), n)
}

func TestScriptsSurviveScriptFlush(t *testing.T) {
	c, s := setup(t, runtimestore.Options{})
	require.NoError(t, s.Preload(ctx))
	register(t, s, "g")
	require.NoError(t, c.ScriptFlush(ctx).Err())
	_, err := s.BeginStop(ctx, stopruntime.BeginRequest{GameID: "g", JobID: "1-0", NowMS: 5, TakeoverMS: 1000})
	require.NoError(t, err)
	require.NoError(t, c.ScriptFlush(ctx).Err())
	r, err := s.FinishStop(ctx, stopruntime.FinishRequest{GameID: "g", JobID: "1-0", NowMS: 6, Status: "stopped",
		Result: stopruntime.StoredResult{Outcome: "success"}}, op("g"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.FinishOK, r.Verdict)
}

func TestOperationLogIsBounded(t *testing.T) {
	c, s := setup(t, runtimestore.Options{OperationsMaxLen: 50})
	for i := 0; i < 2000; i++ {
		require.NoError(t, s.AppendOperation(ctx, op(fmt.Sprint("g", i))))
	}
	n, err := c.XLen(ctx, s.OperationsKey()).Result()
	require.NoError(t, err)
	// MAXLEN ~ trims whole radix-tree nodes (100 entries by default), so the
	// length stays near the bound rather than exactly on it.
	assert.GreaterOrEqual(t, n, int64(50))
	assert.Less(t, n, int64(300))
}

func TestGetAndRegister(t *testing.T) {
	c, s := setup(t, runtimestore.Options{})
	_, ok, err := s.Get(ctx, "g")
	require.NoError(t, err)
	assert.False(t, ok)

	register(t, s, "g")
	rec, ok, err := s.Get(ctx, "g")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, stopruntime.Record{GameID: "g", Status: "running", ContainerID: "c-g", EngineEndpoint: "e:1", Runtime: "docker", UpdatedAtMS: 100}, rec)

	_, err = s.BeginStop(ctx, stopruntime.BeginRequest{GameID: "g", JobID: "1-0", NowMS: 5, TakeoverMS: 1000})
	require.NoError(t, err)
	_, err = s.Register(ctx, stopruntime.Record{GameID: "g", Status: "running", Runtime: "none"})
	require.ErrorIs(t, err, stopruntime.ErrBusy)

	require.NoError(t, c.HSet(ctx, s.RecordKey("g"), "last_result", "{not json").Err())
	_, _, err = s.Get(ctx, "g")
	require.ErrorContains(t, err, "last_result")

	for _, bad := range []string{"a}b", "x:y{z}", "", "a\nb"} {
		_, _, err := s.Get(ctx, bad)
		require.Error(t, err)
	}
}

// The stop scripts read a record once and patch in Lua what they wrote; the
// record they return must be exactly what is stored afterwards, for every
// verdict.
func TestScriptRecordsMatchStored(t *testing.T) {
	_, s := setup(t, runtimestore.Options{})
	stored := func() stopruntime.Record {
		t.Helper()
		rec, ok, err := s.Get(ctx, "g")
		require.NoError(t, err)
		require.True(t, ok)
		return rec
	}
	var begun stopruntime.Record // what the last begin answered
	begin := func(job string, now int64) stopruntime.BeginResponse {
		t.Helper()
		r, err := s.BeginStop(ctx, stopruntime.BeginRequest{GameID: "g", JobID: job, NowMS: now, TakeoverMS: 1000})
		require.NoError(t, err)
		begun = r.Record
		return r
	}
	finish := func(job string, now int64) stopruntime.FinishResponse {
		t.Helper()
		r, err := s.FinishStop(ctx, stopruntime.FinishRequest{GameID: "g", JobID: job, NowMS: now, Status: "stopped",
			Result: stopruntime.StoredResult{Outcome: "success", ContainerID: "c-g", EngineEndpoint: "e:1"}, Begun: begun}, op("g"))
		require.NoError(t, err)
		return r
	}
	register(t, s, "g")
	for _, step := range []struct {
		name string
		do   func() (string, stopruntime.Record)
		want string
	}{
		{"started", func() (string, stopruntime.Record) { r := begin("1-0", 200); return string(r.Verdict), r.Record }, "started"},
		{"busy", func() (string, stopruntime.Record) { r := begin("2-0", 300); return string(r.Verdict), r.Record }, "busy"},
		{"resumed", func() (string, stopruntime.Record) { r := begin("1-0", 400); return string(r.Verdict), r.Record }, "resumed"},
		{"lost", func() (string, stopruntime.Record) { r := finish("2-0", 450); return string(r.Verdict), r.Record }, "lost"},
		{"ok", func() (string, stopruntime.Record) { r := finish("1-0", 500); return string(r.Verdict), r.Record }, "ok"},
		{"finish done", func() (string, stopruntime.Record) { r := finish("1-0", 600); return string(r.Verdict), r.Record }, "done"},
		{"begin done", func() (string, stopruntime.Record) { r := begin("1-0", 700); return string(r.Verdict), r.Record }, "done"},
		{"replay", func() (string, stopruntime.Record) { r := begin("3-0", 800); return string(r.Verdict), r.Record }, "replay"},
	} {
		verdict, rec := step.do()
		require.Equal(t, step.want, verdict, step.name)
		assert.Equal(t, stored(), rec, step.name)
	}
	// Without Begun, FinishOK reads the record back.
	begin("6-0", 850) // replay: the record is stopped
	_, err := s.Register(ctx, stopruntime.Record{GameID: "g", Status: "running", ContainerID: "c-2", EngineEndpoint: "e:2", Runtime: "none", UpdatedAtMS: 860})
	require.NoError(t, err)
	begin("7-0", 870)
	begun = stopruntime.Record{}
	r0 := finish("7-0", 880)
	require.Equal(t, stopruntime.FinishOK, r0.Verdict)
	assert.Equal(t, stored(), r0.Record)
	assert.Equal(t, "c-2", r0.Record.ContainerID)

	// A taken-over stop reports the previous owner; the rest is as stored.
	_, err = s.Register(ctx, stopruntime.Record{GameID: "g", Status: "running", ContainerID: "c-g", EngineEndpoint: "e:1", Runtime: "docker", UpdatedAtMS: 900})
	require.NoError(t, err)
	begin("4-0", 1000)
	r := begin("5-0", 2000)
	require.Equal(t, stopruntime.BeginTakenOver, r.Verdict)
	want := stored()
	assert.Equal(t, "5-0", want.StoppingJobID)
	want.StoppingJobID = "4-0"
	assert.Equal(t, want, r.Record)
}

// The stop scripts pack a record into one string of <length>:<bytes>
// items: values holding the separator, digits, multi-byte text or nothing
// come back exactly as stored.
func TestPackedRepliesKeepAnyValue(t *testing.T) {
	_, s := setup(t, runtimestore.Options{})
	_, err := s.Register(ctx, stopruntime.Record{GameID: "g", Status: "running", ContainerID: "12:ab:3:", EngineEndpoint: "[::1]:8080",
		Runtime: "docker", UpdatedAtMS: 100})
	require.NoError(t, err)
	b, err := s.BeginStop(ctx, stopruntime.BeginRequest{GameID: "g", JobID: "1-0", NowMS: 200, TakeoverMS: 1000})
	require.NoError(t, err)
	stored := func() stopruntime.Record {
		rec, ok, err := s.Get(ctx, "g")
		require.NoError(t, err)
		require.True(t, ok)
		return rec
	}
	assert.Equal(t, stored(), b.Record)
	_, err = s.FinishStop(ctx, stopruntime.FinishRequest{GameID: "g", JobID: "1-0", NowMS: 300, Status: stopruntime.StatusFailed,
		Result: stopruntime.StoredResult{Outcome: stopruntime.OutcomeFailure, ErrorCode: stopruntime.CodeStopFailed,
			ErrorMessage: "3:x 0: ünïcödé \n\"", ContainerID: "12:ab:3:"}, Begun: b.Record}, op("g"))
	require.NoError(t, err)
	r, err := s.BeginStop(ctx, stopruntime.BeginRequest{GameID: "g", JobID: "1-0", NowMS: 400, TakeoverMS: 1000})
	require.NoError(t, err)
	require.Equal(t, stopruntime.BeginDone, r.Verdict)
	assert.Equal(t, stored(), r.Record)
	assert.Equal(t, "3:x 0: ünïcödé \n\"", r.Record.LastResult.ErrorMessage)

	for _, bad := range []any{"", "x", "5:ab", "2:ok3:", "-1:", int64(2), []any{"ok"}} {
		_, _, _, err := runtimestore.SplitStopReply(bad)
		require.Error(t, err, "%#v", bad)
	}
	_, _, _, err = runtimestore.SplitStopReply("4:lost0:1:a")
	require.Error(t, err, "an item count no script sends")
	v, f, n, err := runtimestore.SplitStopReply("9:not_found")
	require.NoError(t, err)
	assert.Equal(t, "not_found", v)
	assert.Zero(t, n)
	assert.Equal(t, [9]string{}, f)
}
