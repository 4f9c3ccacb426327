package stopjobs_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
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
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/service"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

const (
	jobs    = runtimejobs.StopJobsChannelPath
	results = runtimejobs.JobResultsChannelPath
	dead    = runtimejobs.StopJobsDeadChannelPath
)

// failingDriver fails the first `fails` stops with a transient error.
type failingDriver struct {
	fails atomic.Int32
	calls atomic.Int32
}

func (d *failingDriver) Stop(context.Context, string, time.Duration) error {
	d.calls.Add(1)
	if d.fails.Add(-1) >= 0 {
		return fmt.Errorf("%w: docker daemon unreachable", stopruntime.ErrTransient)
	}
	return nil
}

type env struct {
	rdb     *redis.Client
	svc     *stopruntime.Service
	doc     *api.Document
	schemas *contractschema.Validator
}

// start runs the real pipeline: broker, generated controllers, handler,
// orchestrator with Redis records, on a private redis-server.
func start(t *testing.T, driver stopruntime.Driver, maxDeliveries int) *env {
	t.Helper()
	srv := testredis.Start(t)
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	doc, err := api.Load()
	require.NoError(t, err)
	schemas, err := contractschema.New(doc)
	require.NoError(t, err)

	svc, err := stopruntime.New(runtimestore.New(rdb, runtimestore.Options{}), map[string]stopruntime.Driver{"none": driver}, stopruntime.Options{})
	require.NoError(t, err)
	run, err := service.Start(context.Background(), rdb, service.Options{
		Stopper: svc, Workers: 2, Contract: doc,
		Broker: redisstream.Options{
			MaxDeliveries: maxDeliveries, Block: 100 * time.Millisecond,
			RetryBackoff: 10 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond,
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = run.Close(ctx)
	})
	return &env{rdb: rdb, svc: svc, doc: doc, schemas: schemas}
}

func (e *env) register(t *testing.T, game string) {
	_, err := e.svc.Register(context.Background(), stopruntime.Record{GameID: game, Runtime: "none", ContainerID: "c-" + game, EngineEndpoint: "10.0.0.1:7000"})
	require.NoError(t, err)
}

func (e *env) add(t *testing.T, values ...string) string {
	id, err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: jobs, Values: values}).Result()
	require.NoError(t, err)
	return id
}

// read waits for n entries of a stream and checks each against the
// contract's JSON Schema for that channel.
func (e *env) read(t *testing.T, stream string, n int) []map[string]any {
	t.Helper()
	var msgs []redis.XMessage
	require.Eventually(t, func() bool {
		msgs, _ = e.rdb.XRange(context.Background(), stream, "-", "+").Result()
		return len(msgs) >= n
	}, 20*time.Second, 10*time.Millisecond, "waiting for %d entries on %s", n, stream)
	ch, _ := e.doc.ChannelByAddress(stream)
	var out []map[string]any
	for _, m := range msgs {
		payload, err := redisstream.FieldsToPayload(ch, m.Values)
		require.NoError(t, err)
		var typed map[string]any
		require.NoError(t, json.Unmarshal(payload, &typed))
		if stream == dead {
			// Original fields are extra properties; the schema allows them.
			for k, v := range m.Values {
				if _, ok := typed[k]; !ok {
					typed[k] = v
				}
			}
		}
		require.NoError(t, e.schemas.Validate(stream, typed), "entry %s of %s breaks the contract", m.ID, stream)
		vals := map[string]any{"_id": m.ID}
		for k, v := range m.Values {
			vals[k] = v
		}
		out = append(out, vals)
	}
	return out
}

func (e *env) settle(t *testing.T) {
	require.Eventually(t, func() bool {
		p, err := e.rdb.XPending(context.Background(), jobs, "rtmanager").Result()
		return err == nil && p.Count == 0
	}, 10*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
}

func TestStopThenReplayThenUnknown(t *testing.T) {
	e := start(t, none.Driver{}, 5)
	e.register(t, "g1")
	first := e.add(t, "game_id", "g1", "reason", "game_finished", "requested_at_ms", "1764160000000")
	e.read(t, results, 1)
	second := e.add(t, "game_id", " g1 ", "reason", "admin_request")
	e.read(t, results, 2)
	third := e.add(t, "game_id", "nope", "reason", "idle_timeout")
	res := e.read(t, results, 3)
	e.settle(t)

	assert.Equal(t, first, res[0]["job_id"])
	assert.Equal(t, "success", res[0]["outcome"])
	assert.Empty(t, res[0]["error_code"])
	assert.Equal(t, "c-g1", res[0]["container_id"])
	assert.Equal(t, "10.0.0.1:7000", res[0]["engine_endpoint"])
	assert.Equal(t, "stop", res[0]["operation"])

	assert.Equal(t, second, res[1]["job_id"])
	assert.Equal(t, "g1", res[1]["game_id"], "game id is trimmed")
	assert.Equal(t, "success", res[1]["outcome"])
	assert.Equal(t, "replay_no_op", res[1]["error_code"])

	assert.Equal(t, third, res[2]["job_id"])
	assert.Equal(t, "failure", res[2]["outcome"])
	assert.Equal(t, "not_found", res[2]["error_code"])
	assert.Empty(t, res[2]["container_id"])

	rec, ok, err := e.svc.Get(context.Background(), "g1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, stopruntime.StatusStopped, rec.Status)
}

func TestInvalidJobsAreAnsweredAndDeadLettered(t *testing.T) {
	e := start(t, none.Driver{}, 5)
	cases := []struct {
		values []string
		reason string // dead_reason
		answer bool   // a result is expected
	}{
		{[]string{"game_id", "g1", "reason", "vacation"}, "invalid", true},
		{[]string{"game_id", "g 1", "reason", "game_finished"}, "invalid", true},
		{[]string{"game_id", "a}b", "reason", "game_finished"}, "invalid", true},
		{[]string{"game_id", "g1", "reason", "game_finished", "requested_at_ms", "-5"}, "invalid", true},
		{[]string{"game_id", "g1", "reason", "game_finished", "requested_at_ms", "soon"}, "undecodable", true},
		{[]string{"game_id", "g1"}, "undecodable", true},
		{[]string{"reason", "game_finished"}, "undecodable", false},
		{[]string{"game_id", strings.Repeat("g", 200), "reason", "game_finished"}, "invalid", false},
		{[]string{"game_id", "g\xff", "reason", "game_finished"}, "undecodable", false},
	}
	ids := map[string]int{}
	for i, c := range cases {
		ids[e.add(t, c.values...)] = i
	}
	answered := 0
	for _, c := range cases {
		if c.answer {
			answered++
		}
	}
	deadLetters := e.read(t, dead, len(cases))
	res := e.read(t, results, answered)
	e.settle(t)
	require.Len(t, deadLetters, len(cases))
	require.Len(t, e.read(t, results, answered), answered, "no more results than answerable jobs")
	for _, dl := range deadLetters {
		c := cases[ids[dl["original_id"].(string)]]
		assert.Equal(t, c.reason, dl["dead_reason"], "%v", c.values)
		assert.NotEmpty(t, dl["dead_error"])
		if ids[dl["original_id"].(string)] == 0 {
			assert.Contains(t, dl["dead_error"], "reason: fails oneof", "errors name wire fields")
		}
	}
	for _, r := range res {
		c := cases[ids[r["job_id"].(string)]]
		assert.True(t, c.answer)
		assert.Equal(t, "failure", r["outcome"])
		assert.Equal(t, "invalid_job", r["error_code"], "%v", c.values)
	}
}

func TestTransientErrorsAreRetriedThenAnswered(t *testing.T) {
	drv := &failingDriver{}
	drv.fails.Store(2)
	e := start(t, drv, 5)
	e.register(t, "g1")
	e.add(t, "game_id", "g1", "reason", "game_finished")
	res := e.read(t, results, 1)
	e.settle(t)
	assert.Equal(t, "success", res[0]["outcome"])
	assert.Equal(t, int32(3), drv.calls.Load())
	assert.Len(t, e.read(t, results, 1), 1)
	n, _ := e.rdb.XLen(context.Background(), dead).Result()
	assert.Zero(t, n)
}

func TestRetriesRunOutIntoOneFailureAndADeadLetter(t *testing.T) {
	drv := &failingDriver{}
	drv.fails.Store(1000)
	e := start(t, drv, 3)
	e.register(t, "g1")
	id := e.add(t, "game_id", "g1", "reason", "game_finished")
	dl := e.read(t, dead, 1)
	res := e.read(t, results, 1)
	e.settle(t)
	assert.Len(t, e.read(t, results, 1), 1, "exactly one result")
	assert.Equal(t, int32(3), drv.calls.Load())
	assert.Equal(t, id, res[0]["job_id"])
	assert.Equal(t, "failure", res[0]["outcome"])
	assert.Equal(t, "runtime_unavailable", res[0]["error_code"])
	assert.Contains(t, res[0]["error_message"], "docker daemon unreachable")
	assert.Equal(t, "max_deliveries", dl[0]["dead_reason"])
	assert.Equal(t, "3", dl[0]["delivery_count"])
}
