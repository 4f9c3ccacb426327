package redisstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

// addRaw appends an entry as written, duplicate field names included
// (go-redis's XAddArgs would take them from a map).
func addRaw(t *testing.T, rdb redis.UniversalClient, fields ...any) string {
	t.Helper()
	id, err := rdb.Do(context.Background(), append([]any{"xadd", jobs, "*"}, fields...)...).Text()
	require.NoError(t, err)
	return id
}

// answerIfKnown answers a job whose game id could be read.
func answerIfKnown(seen chan<- string) func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
	return func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		seen <- d.Dead() + "|" + string(msg.Payload.GameId)
		if msg.Payload.GameId == "" {
			return nil
		}
		return answer(ctx, c, msg)
	}
}

func checkDuplicateFieldOutcome(t *testing.T, rdb redis.UniversalClient, seen <-chan string, g4ID, g1ID string) {
	t.Helper()
	for _, want := range []string{"undecodable|", "undecodable|g4", "|g1"} {
		select {
		case got := <-seen:
			assert.Equal(t, want, got)
		case <-time.After(20 * time.Second):
			t.Fatalf("handler never saw %q", want)
		}
	}
	waitLen(t, rdb, results, 2)
	waitLen(t, rdb, dead, 2)
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 0 }, 10*time.Second, 10*time.Millisecond)
	byJob := map[string]int{}
	for _, m := range streamEntries(t, rdb, results) {
		byJob[m.Values["job_id"].(string)]++
	}
	assert.Equal(t, map[string]int{g4ID: 1, g1ID: 1}, byJob, "one result for the g4 entry, one for g1")
	dls := streamEntries(t, rdb, dead)
	require.Len(t, dls, 2)
	assert.Contains(t, dls[0].Values["dead_error"], "game_id: named 2 times with different values")
	assert.Contains(t, dls[1].Values["dead_error"], "game_id: named 2 times")
}

// An entry naming a field twice is undecodable: go-redis would keep the
// last value silently, a job for another game than a reader of the stream
// may see. A field whose values differ is left out.
func TestDuplicateFieldEntryIsUndecodable(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	addRaw(t, rdb, "game_id", "g2", "reason", "game_finished", "game_id", "g3")
	g4 := addRaw(t, rdb, "game_id", "g4", "reason", "game_finished", "game_id", "g4")
	g1 := addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	seen := make(chan string, 10)
	startApp(t, rdb, fastOptions(), 1, answerIfKnown(seen))
	checkDuplicateFieldOutcome(t, rdb, seen, g4, g1)
}

// The same holds for entries claimed from a consumer that went away
// (XAUTOCLAIM).
func TestDuplicateFieldEntryIsUndecodableWhenClaimed(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, jobs, group, "0").Err())
	addRaw(t, rdb, "game_id", "g2", "reason", "game_finished", "game_id", "g3")
	g4 := addRaw(t, rdb, "game_id", "g4", "reason", "game_finished", "game_id", "g4")
	g1 := addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	require.NoError(t, rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "gone", Streams: []string{jobs, ">"}}).Err())
	seen := make(chan string, 10)
	startApp(t, rdb, fastOptions(), 1, answerIfKnown(seen))
	checkDuplicateFieldOutcome(t, rdb, seen, g4, g1)
}
