package redisstream_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/testredis"
)

// resultsByJob counts the results of each job id.
func resultsByJob(t testing.TB, rdb redis.UniversalClient) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, m := range streamEntries(t, rdb, results) {
		id, _ := m.Values["job_id"].(string)
		out[id]++
	}
	return out
}

// waitSettled waits until the group has delivered every entry of the job
// stream and has nothing pending: from then on no result can be written,
// since results go out only with an acknowledgement.
func waitSettled(t testing.TB, rdb redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	require.Eventually(t, func() bool {
		last, err := rdb.XRevRangeN(ctx, jobs, "+", "-", 1).Result()
		if err != nil || len(last) == 0 {
			return false
		}
		groups, err := rdb.XInfoGroups(ctx, jobs).Result()
		if err != nil {
			return false
		}
		for _, g := range groups {
			if g.Name == group {
				return g.Pending == 0 && g.LastDeliveredID == last[0].ID
			}
		}
		return false
	}, 30*time.Second, 20*time.Millisecond, "entries still undelivered or pending")
}

// An entry with 4,000 extra fields, written in one MULTI with 40 jobs, is
// answered once and dead-lettered once, cut to the dead letter's bounds;
// its neighbours in the same commit batch are answered once each. (The
// commit script used to die unpacking the dead letter after the batch's
// earlier XADDs and before its XACK, so results were written again at
// every claim.)
func TestWideEntryIsCommittedOnceWithBoundedDeadLetter(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	var ids []string
	var wideID string
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i := 0; i < 40; i++ {
			p.XAdd(ctx, &redis.XAddArgs{Stream: jobs, Values: []string{"game_id", fmt.Sprintf("g%d", i), "reason", "game_finished"}})
			if i == 20 {
				wide := []string{"game_id", "gw", "reason", "game_finished"}
				for f := 0; f < 4000; f++ {
					wide = append(wide, fmt.Sprintf("x%04d", f), "v")
				}
				p.XAdd(ctx, &redis.XAddArgs{Stream: jobs, Values: wide})
			}
		}
		return nil
	})
	require.NoError(t, err)
	for _, m := range streamEntries(t, rdb, jobs) {
		ids = append(ids, m.ID)
		if len(m.Values) > 100 {
			wideID = m.ID
		}
	}
	require.Len(t, ids, 41)
	require.NotEmpty(t, wideID)

	startApp(t, rdb, fastOptions(), 2, answer)
	waitSettled(t, rdb)

	byJob := resultsByJob(t, rdb)
	assert.Len(t, byJob, 41)
	for _, id := range ids {
		assert.Equal(t, 1, byJob[id], "results of job %s", id)
	}
	dl := streamEntries(t, rdb, dead)
	require.Len(t, dl, 1, "the wide entry is dead-lettered once")
	v := dl[0].Values
	assert.Equal(t, wideID, v["original_id"])
	assert.Equal(t, "undecodable", v["dead_reason"])
	assert.Equal(t, "gw", v["game_id"], "the job's own fields are kept first")
	assert.Equal(t, "game_finished", v["reason"])
	assert.Contains(t, v["dead_truncated"], "of 4002 fields")
	assert.Less(t, len(v), 4002, "the copy is bounded")
}

// A dead-letter key of the wrong type makes the commit of an entry that
// must be dead-lettered fail before anything is written: its result is not
// written at each claim, the entry stays pending, Health says why, other
// jobs flow; once the key is fixed, the entry is answered and
// dead-lettered once.
func TestWrongTypeDeadLetterKeyWritesNothingAndIsReported(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	require.NoError(t, rdb.Set(ctx, dead, "x", 0).Err())

	var badCalls atomic.Int32
	a := startApp(t, rdb, fastOptions(), 2, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		if msg.Payload.GameId == "gbad" {
			badCalls.Add(1)
		}
		return answer(ctx, c, msg)
	})
	// Undecodable but answerable: its result and its dead letter go in one
	// commit.
	badID := addJob(t, rdb, "game_id", "gbad", "reason", "game_finished", "requested_at_ms", "yesterday")
	var good []string
	for i := 0; i < 5; i++ {
		good = append(good, addJob(t, rdb, "game_id", fmt.Sprintf("g%d", i), "reason", "game_finished"))
	}

	// Several claim rounds: each handles the entry again and fails to
	// commit it.
	require.Eventually(t, func() bool { return badCalls.Load() >= 3 }, 30*time.Second, 20*time.Millisecond)
	byJob := resultsByJob(t, rdb)
	assert.Zero(t, byJob[badID], "nothing of a refused commit is written")
	require.Eventually(t, func() bool {
		byJob = resultsByJob(t, rdb)
		for _, id := range good {
			if byJob[id] != 1 {
				return false
			}
		}
		return true
	}, 20*time.Second, 20*time.Millisecond, "other jobs flow")
	herr := a.broker.Health()
	require.Error(t, herr)
	assert.Contains(t, herr.Error(), "WRONGTYPE")
	assert.Contains(t, herr.Error(), badID)

	require.NoError(t, rdb.Del(ctx, dead).Err())
	waitSettled(t, rdb)
	byJob = resultsByJob(t, rdb)
	assert.Equal(t, 1, byJob[badID])
	for _, id := range good {
		assert.Equal(t, 1, byJob[id])
	}
	dl := streamEntries(t, rdb, dead)
	require.Len(t, dl, 1)
	assert.Equal(t, badID, dl[0].Values["original_id"])
	assert.True(t, strings.HasPrefix(dl[0].Values["dead_reason"].(string), "undecodable"))
	require.Eventually(t, func() bool { return a.broker.Health() == nil }, 10*time.Second, 20*time.Millisecond)
}
