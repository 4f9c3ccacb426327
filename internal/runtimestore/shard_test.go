package runtimestore_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
)

// Shards of game ids among 16, from testdata/contract/shards.json
// (computed outside Go).
var shardOf16 = map[string]int{"123456789": 3, "foo": 6, "bar": 5, "hello": 2, "game-1": 3, "game-2": 0, "g": 1}

func layout(t *testing.T, shards int) api.Layout {
	t.Helper()
	doc, err := api.Load()
	require.NoError(t, err)
	l, err := api.NewLayout(doc, shards, false)
	require.NoError(t, err)
	return l
}

func sharded(t *testing.T) (*redis.Client, *runtimestore.Store) {
	t.Helper()
	return setup(t, runtimestore.Options{Layout: layout(t, 16), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func TestShardedKeys(t *testing.T) {
	_, s := sharded(t)
	for id, n := range shardOf16 {
		tag := "{rt-" + strconv.Itoa(n) + "}"
		assert.Equal(t, "rtmanager:"+tag+":runtime:"+id, s.RecordKey(id), id)
		assert.Equal(t, "rtmanager:"+tag+":operations", s.OperationsKeyOf(id), id)
	}
	logs := s.OperationsKeys()
	require.Len(t, logs, 16)
	assert.Equal(t, "rtmanager:{rt-0}:operations", logs[0])
	assert.Equal(t, "rtmanager:{rt-15}:operations", logs[15])

	// One shard on a single Redis keeps today's keys exactly.
	_, s = setup(t, runtimestore.Options{Layout: layout(t, 1)})
	assert.Equal(t, "rtmanager:runtime:{galaxy.eu-1:42}", s.RecordKey("galaxy.eu-1:42"))
	assert.Equal(t, "rtmanager:operations", s.OperationsKeyOf("galaxy.eu-1:42"))
	assert.Equal(t, []string{"rtmanager:operations"}, s.OperationsKeys())
}

// entries are the log entries of every shard, by shard.
func entries(t *testing.T, c *redis.Client, s *runtimestore.Store) map[int][]map[string]any {
	t.Helper()
	out := map[int][]map[string]any{}
	for n, key := range s.OperationsKeys() {
		msgs, err := c.XRange(ctx, key, "-", "+").Result()
		require.NoError(t, err)
		for _, m := range msgs {
			out[n] = append(out[n], m.Values)
		}
	}
	return out
}

func TestShardedStopAndStartLogInTheGamesShard(t *testing.T) {
	c, s := sharded(t)
	for _, id := range []string{"foo", "bar"} {
		register(t, s, id)
		_, err := s.BeginStop(ctx, stopruntime.BeginRequest{GameID: id, JobID: "1-0", NowMS: 5, TakeoverMS: 1000})
		require.NoError(t, err)
		fin, err := s.FinishStop(ctx, stopruntime.FinishRequest{GameID: id, JobID: "1-0", NowMS: 6, Status: "stopped",
			Result: stopruntime.StoredResult{Outcome: "success"}}, op(id))
		require.NoError(t, err)
		assert.Equal(t, stopruntime.FinishOK, fin.Verdict)
	}
	v, _, _, err := s.BeginStart(ctx, "hello", "2-0", "demo", 10, 1000)
	require.NoError(t, err)
	require.Equal(t, runtimestore.StartStarted, v)
	v, _, err = s.FinishStart(ctx, "hello", "2-0", 11, "running",
		stopruntime.StoredResult{Outcome: "success", ContainerID: "c-h", EngineEndpoint: "e:2"}, "none",
		stopruntime.Operation{GameID: "hello", Operation: "start", Source: "lobby_stream", SourceRef: "2-0", Outcome: "success"})
	require.NoError(t, err)
	require.Equal(t, runtimestore.StartOK, v)

	got := entries(t, c, s)
	require.Len(t, got, 3, "three shards have an entry")
	require.Len(t, got[6], 1)
	assert.Equal(t, "foo", got[6][0]["game_id"])
	require.Len(t, got[5], 1)
	assert.Equal(t, "bar", got[5][0]["game_id"])
	require.Len(t, got[2], 1)
	assert.Equal(t, "hello", got[2][0]["game_id"])
	assert.Equal(t, "start", got[2][0]["operation"])

	// Only sharded keys exist: records in their shard, no unsharded key.
	keys, err := c.Keys(ctx, "*").Result()
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{
		"rtmanager:{rt-6}:runtime:foo", "rtmanager:{rt-5}:runtime:bar", "rtmanager:{rt-2}:runtime:hello",
		"rtmanager:{rt-6}:operations", "rtmanager:{rt-5}:operations", "rtmanager:{rt-2}:operations",
	}, keys)
	rec, ok, err := s.Get(ctx, "hello")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "running", rec.Status)
	assert.Equal(t, "c-h", rec.ContainerID)
}

// An operation log that cannot take an entry (a key of another type) fails
// no transition: the record is final and holds the answer, in both
// layouts, for a stop and for a start.
func TestFailedLogWriteFailsNoFinish(t *testing.T) {
	for name, opts := range map[string]runtimestore.Options{
		"unsharded": {},
		"sharded":   {Layout: layout(t, 16)},
	} {
		t.Run(name, func(t *testing.T) {
			opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
			c, s := setup(t, opts)
			for _, id := range []string{"foo", "hello"} {
				require.NoError(t, c.Set(ctx, s.OperationsKeyOf(id), "not a stream", 0).Err())
			}
			register(t, s, "foo")
			_, err := s.BeginStop(ctx, stopruntime.BeginRequest{GameID: "foo", JobID: "1-0", NowMS: 5, TakeoverMS: 1000})
			require.NoError(t, err)
			fin, err := s.FinishStop(ctx, stopruntime.FinishRequest{GameID: "foo", JobID: "1-0", NowMS: 6, Status: "stopped",
				Result: stopruntime.StoredResult{Outcome: "success"}}, op("foo"))
			require.NoError(t, err)
			assert.Equal(t, stopruntime.FinishOK, fin.Verdict)
			assert.Equal(t, "stopped", fin.Record.Status)
			rec, _, err := s.Get(ctx, "foo")
			require.NoError(t, err)
			assert.Equal(t, "stopped", rec.Status)
			assert.Equal(t, "1-0", rec.LastJobID)

			_, _, _, err = s.BeginStart(ctx, "hello", "2-0", "demo", 10, 1000)
			require.NoError(t, err)
			v, frec, err := s.FinishStart(ctx, "hello", "2-0", 11, "running", stopruntime.StoredResult{Outcome: "success", ContainerID: "c"}, "none", op("hello"))
			require.NoError(t, err)
			assert.Equal(t, runtimestore.StartOK, v)
			assert.Equal(t, "hello", frec.GameID)
			rec, _, err = s.Get(ctx, "hello")
			require.NoError(t, err)
			assert.Equal(t, "running", rec.Status)

			// AppendOperation alone still says it failed; its callers carry on.
			require.Error(t, s.AppendOperation(ctx, op("foo")))
		})
	}
}

func TestShardedTransitionWritesTheGamesShardEvents(t *testing.T) {
	c, s := sharded(t)
	doc, err := api.Load()
	require.NoError(t, err)
	ch, ok := doc.ChannelByAddress(events)
	require.True(t, ok)
	l := layout(t, 16)
	register(t, s, "foo")
	key := l.Key(ch, l.ShardOf("foo"))
	require.Equal(t, "runtime:{rt-6}:events", key)

	// Another shard's stream is refused before anything is written.
	_, err = s.Transition(ctx, l.Key(ch, 5), 1000, exitChange("foo", 1))
	require.ErrorContains(t, err, "not in the shard")
	_, err = s.Transition(ctx, events, 1000, exitChange("foo", 1))
	require.ErrorContains(t, err, "not in the shard")
	rec, _, err := s.Get(ctx, "foo")
	require.NoError(t, err)
	assert.Equal(t, "running", rec.Status)

	id, err := s.Transition(ctx, key, 1000, exitChange("foo", 137))
	require.NoError(t, err)
	msgs, err := c.XRange(ctx, key, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.Equal(t, id, msgs[0].ID)
	rec, _, err = s.Get(ctx, "foo")
	require.NoError(t, err)
	assert.Equal(t, "exited", rec.Status)
	n, err := c.Exists(ctx, events, l.Key(ch, 5)).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestShardedWatchedFindsTheLayoutsRecords(t *testing.T) {
	c, s := sharded(t)
	for id := range shardOf16 {
		register(t, s, id)
	}
	// Keys that are no records of this layout: an unsharded record, a
	// record in a shard that is not its game's (another shard count), junk.
	require.NoError(t, c.HSet(ctx, "rtmanager:runtime:{old}", "status", "running").Err())
	require.NoError(t, c.HSet(ctx, "rtmanager:{rt-9}:runtime:foo2", "status", "running").Err()) // foo2 is not in 9 of 16
	require.NoError(t, c.HSet(ctx, "rtmanager:{rt-1}:runtime:bad id!", "status", "running").Err())
	require.NoError(t, c.Set(ctx, "rtmanager:{rt-1}:runtime:g", "x", 0).Err()) // g's key, of the wrong type
	require.NotEqual(t, 9, layout(t, 16).ShardOf("foo2"))

	recs, err := s.Watched(context.Background(), "running")
	require.NoError(t, err)
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.GameID)
		assert.Equal(t, "c-"+r.GameID, r.ContainerID)
	}
	assert.ElementsMatch(t, []string{"123456789", "foo", "bar", "hello", "game-1", "game-2"}, ids)
}
