package main

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func result(id, job, outcome string) redis.XMessage {
	return redis.XMessage{ID: id, Values: map[string]any{"job_id": job, "outcome": outcome}}
}

func TestMassTimesAreFromTheFirstJobsEntryID(t *testing.T) {
	res := massResult{FloorS: 1, PerWorkerS: 32}
	jobs := []string{"1000-0", "1000-1", "1001-0", "1002-0"} // three slow games, then the fast one
	msgs := []redis.XMessage{
		result("1010-0", "1002-0", "success"), // the fast game, 8 ms after its job
		result("2000-0", "1000-0", "success"),
		result("2100-0", "1001-0", "success"),
		result("4000-0", "1000-1", "success"),
	}
	require.NoError(t, massTimes(&res, jobs, msgs))
	assert.InDelta(t, 0.002, res.WrittenS, 1e-9)
	assert.InDelta(t, 0.010, res.FirstResultS, 1e-9, "the fast game's result counts as the first")
	assert.InDelta(t, 3.0, res.AllResultsS, 1e-9)
	assert.Equal(t, int64(8), res.FastMS)
	assert.InDelta(t, 3.0, res.VsFloor, 1e-9)
	assert.InDelta(t, 3.0/32, res.VsPerWorker, 1e-9)
}

func TestMassTimesFailUnlessExactlyOneSuccessPerJob(t *testing.T) {
	jobs := []string{"1000-0", "1000-1", "1001-0"}
	ok := []redis.XMessage{result("2000-0", "1000-0", "success"), result("2001-0", "1000-1", "success"), result("2002-0", "1001-0", "success")}
	require.NoError(t, massTimes(&massResult{}, jobs, ok))

	for name, msgs := range map[string][]redis.XMessage{
		"missing":   ok[:2],
		"duplicate": append(append([]redis.XMessage{}, ok...), result("2003-0", "1000-1", "success")),
		"failure":   {ok[0], ok[1], result("2002-0", "1001-0", "failure")},
		"unknown":   append(append([]redis.XMessage{}, ok...), result("2003-0", "999-0", "success")),
	} {
		err := massTimes(&massResult{}, jobs, msgs)
		assert.ErrorContains(t, err, "not exactly one success result per job", name)
	}
}

func op(id, job, startedAt string) redis.XMessage {
	return redis.XMessage{ID: id, Values: map[string]any{"operation": "stop", "source_ref": job, "started_at_ms": startedAt}}
}

func TestMassBeginsFromTheOperationLog(t *testing.T) {
	jobs := []string{"1000-0", "1000-1", "1002-0"} // two slow games, then the fast one
	var res massResult
	require.NoError(t, massBegins(&res, jobs, []redis.XMessage{
		op("2000-0", "1000-0", "1001"),
		op("2001-0", "1002-0", "1350"), // the fast game, begun 348 ms after its job
		op("2002-0", "1000-1", "1400"), // a retry: its first begin counts
		op("2003-0", "1000-1", "1100"),
		{ID: "2004-0", Values: map[string]any{"operation": "start", "source_ref": "1000-0", "started_at_ms": "9999"}},
	}))
	assert.InDelta(t, 0.350, res.BegunS, 1e-9)
	assert.Equal(t, int64(348), res.FastBeginMS)

	err := massBegins(&res, jobs, []redis.XMessage{op("2000-0", "1000-0", "1001")})
	assert.ErrorContains(t, err, "no stop of job 1000-1")
}
