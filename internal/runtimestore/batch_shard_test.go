package runtimestore

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
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

func layout16(t *testing.T) api.Layout {
	t.Helper()
	doc, err := api.Load()
	require.NoError(t, err)
	l, err := api.NewLayout(doc, 16, false)
	require.NoError(t, err)
	return l
}

func shardedStore(t *testing.T) (*redis.Client, *Store) {
	t.Helper()
	c := testredis.Start(t).Client()
	t.Cleanup(func() { _ = c.Close() })
	return c, New(c, Options{Layout: layout16(t), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

// In the sharded layout calls merge per shard: the begins of four games in
// three shards are three script calls, and so are their logged finishes,
// each entry in its shard's log. A failing record and a log of the wrong
// type stay their own caller's trouble.
func TestBatchMergesPerShard(t *testing.T) {
	ctx := context.Background()
	c, s := shardedStore(t)
	require.NoError(t, s.Preload(ctx))
	// Shards among 16 (testdata/contract/shards.json): 3, 3, 6, 5.
	games := []string{"123456789", "game-1", "foo", "bar"}
	for _, g := range games {
		_, err := s.Register(ctx, stopruntime.Record{GameID: g, Status: "running", ContainerID: "c-" + g, Runtime: "none", UpdatedAtMS: 1})
		require.NoError(t, err)
	}
	// "hello" (shard 2) holds a string: its scripts fail for it alone.
	require.NoError(t, c.Set(ctx, s.RecordKey("hello"), "x", 0).Err())
	// Shard 5's log cannot take an entry.
	require.NoError(t, c.Set(ctx, s.OperationsKeyOf("bar"), "x", 0).Err())
	require.NoError(t, c.ConfigResetStat(ctx).Err())

	var begins []*call
	for _, g := range append(games, "hello") {
		begins = append(begins, &call{script: s.begin, key: s.RecordKey(g), args: []any{"1-" + g, 100, 1000}, shard: s.keys.shard(g)})
	}
	runQueued(s.batch, begins...)
	assert.Equal(t, 4, evalshaCalls(t, c), "five begins in four shards")
	for i, g := range games {
		v, err := begins[i].value()
		require.NoError(t, err, g)
		verdict, _, _, err := parseFields(g, v, false)
		require.NoError(t, err, g)
		assert.Equal(t, "started", verdict, g)
	}
	_, err := begins[4].value()
	require.ErrorContains(t, err, "WRONGTYPE")

	require.NoError(t, c.ConfigResetStat(ctx).Err())
	var fins []*call
	for _, g := range append(games, "hello") {
		op := stopruntime.Operation{GameID: g, Operation: "stop", SourceRef: "1-" + g, Outcome: "success"}
		fins = append(fins, &s.logCall(s.finish, s.finishLogged, g, s.RecordKey(g), []any{"1-" + g, 200, "stopped", `{"outcome":"success"}`}, op).call)
	}
	runQueued(s.batch, fins...)
	assert.Equal(t, 4, evalshaCalls(t, c), "five logged finishes in four shards, entries included")
	for i, g := range games {
		v, err := fins[i].value()
		require.NoError(t, err, g)
		assert.Equal(t, int64(1), v, g)
		rec, _, err := s.Get(ctx, g)
		require.NoError(t, err)
		assert.Equal(t, "stopped", rec.Status, g)
	}
	_, err = fins[4].value()
	require.ErrorContains(t, err, "WRONGTYPE")
	require.ErrorContains(t, fins[4].logErr(), "no entry")
	require.ErrorContains(t, fins[3].logErr(), "WRONGTYPE operation log rtmanager:{rt-5}:operations")
	for _, f := range fins[:3] {
		require.NoError(t, f.logErr())
	}

	logged := func(key string) []string {
		msgs, err := c.XRange(ctx, key, "-", "+").Result()
		require.NoError(t, err)
		var ids []string
		for _, m := range msgs {
			ids = append(ids, m.Values["game_id"].(string))
		}
		return ids
	}
	assert.Equal(t, []string{"123456789", "game-1"}, logged("rtmanager:{rt-3}:operations"))
	assert.Equal(t, []string{"foo"}, logged("rtmanager:{rt-6}:operations"))
	assert.Empty(t, logged("rtmanager:{rt-2}:operations"))
}

// On a Cluster client calls merge only in the sharded layout (where one
// shard is one slot).
func TestBatchMergesOnClusterOnlyWhenSharded(t *testing.T) {
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	t.Cleanup(func() { _ = cc.Close() })
	assert.False(t, New(cc, Options{}).batch.merge)
	assert.True(t, New(cc, Options{Layout: layout16(t)}).batch.merge)
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = c.Close() })
	assert.True(t, New(c, Options{}).batch.merge)
}

// A logged script checks its whole argument list and the log's MAXLEN
// before its first write.
func TestLoggedScriptChecksArgumentsFirst(t *testing.T) {
	ctx := context.Background()
	c, s := shardedStore(t)
	key, log := s.RecordKey("foo"), s.OperationsKeyOf("foo")
	require.NoError(t, c.HSet(ctx, key, "status", "stopping", "stopping_job_id", "1-0").Err())
	rec := []any{"1-0", 5, "stopped", `{"outcome":"success"}`}
	for name, argv := range map[string][]any{
		"odd entry":          append(append([]any{0}, rec...), 1, "game_id"),
		"entry too long":     append(append([]any{0}, rec...), 4, "game_id", "foo"),
		"count not a number": append(append([]any{0}, rec...), "x", "game_id", "foo"),
		"extra arguments":    append(append([]any{0}, rec...), 2, "game_id", "foo", "more"),
		"bad maxlen":         append(append([]any{"many"}, rec...), 2, "game_id", "foo"),
		"missing arguments":  {0, "1-0", 5},
	} {
		err := c.Eval(ctx, finishLoggedLua, []string{log, key}, argv...).Err()
		require.ErrorContains(t, err, "logged script: bad arguments", name)
	}
	st, err := c.HGet(ctx, key, "status").Result()
	require.NoError(t, err)
	assert.Equal(t, "stopping", st)
	n, err := c.Exists(ctx, log).Result()
	require.NoError(t, err)
	assert.Zero(t, n)

	// The well-formed call writes both.
	v, err := c.Eval(ctx, finishLoggedLua, []string{log, key}, append(append([]any{0}, rec...), 2, "game_id", "foo")...).Slice()
	require.NoError(t, err)
	require.Len(t, v, 1)
	assert.Equal(t, int64(1), v[0].([]any)[0])
	assert.Equal(t, int64(1), c.XLen(ctx, log).Val())
}

// The logged scripts trim each shard's log like XADD MAXLEN ~ does
// elsewhere (whole stream nodes, so near the bound, not at it).
func TestLoggedScriptBoundsTheLog(t *testing.T) {
	ctx := context.Background()
	c := testredis.Start(t).Client()
	t.Cleanup(func() { _ = c.Close() })
	s := New(c, Options{Layout: layout16(t), OperationsMaxLen: 50})
	var calls []*call
	for i := range 2000 {
		op := stopruntime.Operation{GameID: "foo", Operation: "stop", SourceRef: strconv.Itoa(i), Outcome: "success"}
		// No record: each finish is not_found, and its entry is written.
		calls = append(calls, &s.logCall(s.finish, s.finishLogged, "foo", s.RecordKey("foo"), []any{strconv.Itoa(i), 1, "stopped", "{}"}, op).call)
	}
	runQueued(s.batch, calls...)
	for _, cl := range calls {
		v, err := cl.value()
		require.NoError(t, err)
		require.Equal(t, "9:not_found", v)
		require.NoError(t, cl.logErr())
	}
	n, err := c.XLen(ctx, s.OperationsKeyOf("foo")).Result()
	require.NoError(t, err)
	assert.GreaterOrEqual(t, n, int64(50))
	assert.Less(t, n, int64(300))
}
