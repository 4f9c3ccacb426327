package main

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

func result(jobID, game string) []string {
	return []string{"job_id", jobID, "game_id", game, "operation", "stop", "outcome", "success", "error_code", "",
		"error_message", "", "container_id", "", "engine_endpoint", "", "completed_at_ms", "1"}
}

// The checker finds missing, duplicated, unknown and off-contract results,
// and dead letters that do not carry their job's fields.
func TestCheckFindsEveryBrokenGuarantee(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	c, err := loadContract()
	require.NoError(t, err)
	add := func(stream string, fields ...string) string {
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: fields}).Result()
		require.NoError(t, err)
		return id
	}
	j1 := add(jobsStream, "game_id", "g1", "reason", "game_finished")
	j2 := add(jobsStream, "game_id", "g2", "reason", "game_finished")
	add(jobsStream, "game_id", "g3", "reason", "game_finished") // never answered
	j4 := add(jobsStream, "game_id", "g 4", "reason", "vacation")
	add(resultsStream, result(j1, "g1")...)
	add(resultsStream, result(j1, "g1")...) // duplicate
	add(resultsStream, result("1-1", "g9")...)
	bad := result(j2, "g2")
	bad[7] = "maybe" // outcome off the contract
	add(resultsStream, bad...)
	add(deadStream, "dead_reason", "invalid", "dead_error", "x", "original_id", j4, "delivery_count", "1",
		"dead_at_ms", "1", "game_id", "g 4", "reason", "holiday")

	rep, err := c.check(ctx, rdb, plainKeys, nil)
	require.NoError(t, err)
	assert.Equal(t, 4, rep.Jobs)
	assert.Equal(t, 1, rep.Duplicates)
	assert.Equal(t, 2, rep.Missing) // g3 and g 4
	assert.Equal(t, 1, rep.Unknown)
	assert.Equal(t, 1, rep.ContractFails)
	assert.Equal(t, 1, rep.BadCopies)
	assert.False(t, rep.ok())

	rep, err = c.check(ctx, rdb, plainKeys, func(m redis.XMessage) bool { return m.ID == j1 })
	require.NoError(t, err)
	assert.Equal(t, 0, rep.Missing)
}

// A dead letter cut to the broker's bounds carries a subset of its job's
// fields, each a prefix of the original; anything else is a bad copy.
func TestCarriesFieldsOfATruncatedDeadLetter(t *testing.T) {
	job := map[string]string{"game_id": "g", "reason": "game_finished", "x": "0123456789"}
	dead := func(extra ...string) redisstream.DeadLetter {
		m := map[string]any{"dead_reason": "undecodable", "original_id": "1-1"}
		for i := 0; i+1 < len(extra); i += 2 {
			m[extra[i]] = extra[i+1]
		}
		return redisstream.ReadDeadLetter(m)
	}
	assert.True(t, carriesFields(dead("game_id", "g", "reason", "game_finished", "x", "0123456789"), job))
	assert.False(t, carriesFields(dead("game_id", "g", "x", "0123"), job), "cut without saying so")
	assert.True(t, carriesFields(dead("game_id", "g", "x", "0123", "dead_truncated", "copied 2 of 3 fields"), job))
	assert.False(t, carriesFields(dead("game_id", "g", "x", "0124", "dead_truncated", "…"), job), "not a prefix")
	assert.False(t, carriesFields(dead("game_id", "h", "dead_truncated", "…"), job))
	assert.False(t, carriesFields(dead("y", "1", "dead_truncated", "…"), job), "a field the job does not have")
}

func TestMetricValue(t *testing.T) {
	text := "# HELP x\nrtmanager_acks_total{stream=\"runtime:stop_jobs\"} 42\nrtmanager_acks_total_other 7\n"
	assert.InDelta(t, 42.0, metricValue(text, "rtmanager_acks_total", "stream", "runtime:stop_jobs"), 1e-9)
	assert.InDelta(t, 0.0, metricValue(text, "rtmanager_acks_total", "stream", "other"), 1e-9)
}

// Every poison kind is malformed, and says whether its game id is readable.
func TestPoisonKinds(t *testing.T) {
	kinds := map[string]bool{}
	for i := 0; i < poisonKinds; i++ {
		p := makePoison(i, []string{"g-0001"})
		kinds[p.kind] = true
		assert.Equal(t, p.wantResult, p.wantGame != "", p.kind)
		assert.Zero(t, len(p.fields)%2, p.kind)
	}
	assert.Len(t, kinds, poisonKinds)
}

// Entry ids are unique per stream only: the same id in two shards is two
// jobs, each answered on its own shard's result stream, and a result on
// another shard's stream answers nothing there.
func TestCheckShardsKeysJobsByShard(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	c, err := loadContract()
	require.NoError(t, err)
	shards := []streamKeys{
		{jobs: "runtime:{rt-0}:stop_jobs", results: "runtime:{rt-0}:job_results", dead: "runtime:{rt-0}:stop_jobs:dead"},
		{jobs: "runtime:{rt-1}:stop_jobs", results: "runtime:{rt-1}:job_results", dead: "runtime:{rt-1}:stop_jobs:dead"},
	}
	add := func(stream, id string, fields ...string) {
		require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: id, Values: fields}).Err())
	}
	for _, k := range shards {
		add(k.jobs, "5-1", "game_id", "g", "reason", "game_finished")
		add(k.results, "*", result("5-1", "g")...)
	}
	rep, per, err := c.checkShards(ctx, rdb, shards)
	require.NoError(t, err)
	assert.True(t, rep.ok(), "%v", rep.Examples)
	assert.Equal(t, 2, rep.Jobs)
	assert.Equal(t, 2, rep.Answered)
	assert.Len(t, per, 2)

	// Shard 1's job 6-1 answered on shard 0's stream: missing in shard 1,
	// unknown in shard 0.
	add(shards[1].jobs, "6-1", "game_id", "h", "reason", "game_finished")
	add(shards[0].results, "*", result("6-1", "h")...)
	rep, per, err = c.checkShards(ctx, rdb, shards)
	require.NoError(t, err)
	assert.False(t, rep.ok())
	assert.Equal(t, 1, rep.Missing)
	assert.Equal(t, 1, rep.Unknown)
	assert.Equal(t, 1, per[0].Unknown)
	assert.Equal(t, 1, per[1].Missing)
	assert.Zero(t, rep.Duplicates)
}
