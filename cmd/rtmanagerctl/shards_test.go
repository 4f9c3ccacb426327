package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/runtimewatch"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// testShards is the shard count of the sharded tests on one Redis.
const testShards = 16

// shardedLayout is the layout of rtmanager --shards n, on a cluster or not.
func shardedLayout(t *testing.T, n int, cluster bool) (*api.Document, api.Layout) {
	t.Helper()
	doc, err := api.Load()
	require.NoError(t, err)
	l, err := api.NewLayout(doc, n, cluster)
	require.NoError(t, err)
	return doc, l
}

// shardKey is the key of the channel at address in shard n.
func shardKey(t *testing.T, doc *api.Document, l api.Layout, address string, n int) string {
	t.Helper()
	ch, ok := doc.ChannelByAddress(address)
	require.True(t, ok, address)
	return l.Key(ch, n)
}

// gamesOnShards returns n game ids whose shards are all different.
func gamesOnShards(t *testing.T, l api.Layout, n int) []string {
	t.Helper()
	seen := map[int]bool{}
	var games []string
	for i := 0; len(games) < n && i < 10000; i++ {
		g := fmt.Sprint("g", i)
		if s := l.ShardOf(g); !seen[s] {
			seen[s] = true
			games = append(games, g)
		}
	}
	require.Len(t, games, n)
	return games
}

// addResultAt appends a result with the entry id id ("*": Redis's) to key.
func addResultAt(t *testing.T, c redis.UniversalClient, key, id, jobID, game string) string {
	t.Helper()
	got, err := c.XAdd(tctx(t), &redis.XAddArgs{Stream: key, ID: id, Values: []any{
		"job_id", jobID, "game_id", game, "operation", "stop", "outcome", "success", "error_code", "",
		"error_message", "", "container_id", "c-" + game, "engine_endpoint", "10.0.0.1:7000",
		"completed_at_ms", "1764160000420",
	}}).Result()
	require.NoError(t, err)
	return got
}

type shardID struct {
	Shard int
	ID    string
}

func resultShardIDs(t *testing.T, out string) []shardID {
	t.Helper()
	var got []shardID
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		v := decode[resultView](t, line)
		require.NotNil(t, v.Shard, line)
		got = append(got, shardID{*v.Shard, v.ID})
	}
	return got
}

// results with --shards lists the newest entries of all shards, merged by
// entry id (numerically: 10-0 after 9-0), and names each entry's shard:
// the same id can be on two shards.
func TestResultsAcrossShards(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()
	doc, l := shardedLayout(t, testShards, false)
	a, b := shardKey(t, doc, l, resultsKey, 3), shardKey(t, doc, l, resultsKey, 11)
	for _, id := range []string{"1-0", "3-0", "9-0"} {
		addResultAt(t, c, a, id, "job-a-"+id, "ga")
	}
	for _, id := range []string{"2-0", "5-0", "9-0", "10-0"} {
		addResultAt(t, c, b, id, "job-b-"+id, "gb")
	}

	o := cli(t, srv.URL(), "--shards", "16", "--json", "results", "--count", "4")
	requireOK(t, o)
	assert.Equal(t, []shardID{{11, "5-0"}, {3, "9-0"}, {11, "9-0"}, {11, "10-0"}}, resultShardIDs(t, o.stdout))
	assert.Contains(t, o.stdout, `"job_id":"job-a-9-0"`)

	// The table has a SHARD column after the ID.
	o = cli(t, srv.URL(), "results", "--shards", "16", "--count", "2")
	requireOK(t, o)
	lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
	require.Len(t, lines, 3, o.stdout)
	assert.Regexp(t, `^ID\s+SHARD\s+JOB\s+GAME\s+OUTCOME`, lines[0])
	assert.Regexp(t, `^9-0\s+11\s+job-b-9-0\s+gb\s+success`, lines[1])
	assert.Regexp(t, `^10-0\s+11\s+job-b-10-0\s+gb\s+success`, lines[2])

	// Without --shards the tool reads the single-Redis key, which is empty.
	o = cli(t, srv.URL(), "--json", "results")
	requireOK(t, o)
	assert.Empty(t, o.stdout)
}

// results --follow with --shards prints what any shard gets.
func TestResultsFollowAcrossShards(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()
	doc, l := shardedLayout(t, testShards, false)
	key := func(n int) string { return shardKey(t, doc, l, resultsKey, n) }
	addResultAt(t, c, key(0), "*", "old-0", "old")
	addResultAt(t, c, key(15), "*", "old-15", "old")

	fctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	codec := make(chan int, 1)
	go func() {
		getenv := func(string) string { return srv.URL() }
		codec <- run(fctx, []string{"--shards", "16", "results", "--follow", "--json", "--count", "1"}, getenv, &out, &errb)
	}()
	require.Eventually(t, func() bool { return strings.Contains(out.String(), `"old-15"`) }, 10*time.Second, 20*time.Millisecond)
	addResultAt(t, c, key(7), "*", "new-7", "g7")
	addResultAt(t, c, key(0), "*", "new-0", "g0")
	require.Eventually(t, func() bool { return strings.Contains(out.String(), `"new-0"`) }, 10*time.Second, 20*time.Millisecond)
	cancel()
	select {
	case code := <-codec:
		assert.Equal(t, 0, code, errb.String())
	case <-time.After(5 * time.Second):
		t.Fatal("--follow did not stop when its context was cancelled")
	}
	var jobs []string
	var shards []int
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		v := decode[resultView](t, line)
		jobs = append(jobs, v.JobId)
		require.NotNil(t, v.Shard)
		shards = append(shards, *v.Shard)
	}
	assert.Equal(t, []string{"old-15", "new-7", "new-0"}, jobs)
	assert.Equal(t, []int{15, 7, 0}, shards)
}

// events and status with --shards: the real runtime store and watch write
// two games' records and events to their shards; the tool finds both.
func TestEventsAndStatusAcrossShards(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()
	doc, l := shardedLayout(t, testShards, false)
	store := runtimestore.New(c, runtimestore.Options{Layout: l})
	games := gamesOnShards(t, l, 2)
	for _, g := range games {
		_, err := store.Register(tctx(t), stopruntime.Record{GameID: g, Status: "running", ContainerID: "pid:1234:start:5", Runtime: "process"})
		require.NoError(t, err)
	}
	ch, _ := doc.ChannelByAddress(eventsKey)
	w, err := runtimewatch.New(store, runtimewatch.Options{Drivers: map[string]runtimewatch.Inspector{"process": exitedInspector{}},
		Events: ch, Layout: l, ProbeInterval: -1})
	require.NoError(t, err)
	w.Start()
	for _, g := range games {
		key := shardKey(t, doc, l, eventsKey, l.ShardOf(g))
		require.Eventually(t, func() bool { return c.XLen(context.Background(), key).Val() == 1 }, 10*time.Second, 10*time.Millisecond)
	}
	require.NoError(t, w.Close(context.Background()))

	o := cli(t, srv.URL(), "--shards", "16", "events", "--json")
	requireOK(t, o)
	got := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(o.stdout), "\n") {
		ev := decode[eventView](t, line)
		assert.Empty(t, ev.Err)
		assert.Equal(t, "engine_exited", ev.Type)
		require.NotNil(t, ev.Shard)
		got[string(ev.GameId)] = *ev.Shard
	}
	assert.Equal(t, map[string]int{games[0]: l.ShardOf(games[0]), games[1]: l.ShardOf(games[1])}, got)

	o = cli(t, srv.URL(), "--shards", "16", "events")
	requireOK(t, o)
	assert.Regexp(t, `^ID\s+SHARD\s+GAME\s+TYPE`, o.stdout)
	assert.Regexp(t, `(?m)\s`+strconv.Itoa(l.ShardOf(games[1]))+`\s+`+games[1]+`\s+engine_exited\s`, o.stdout)

	for _, g := range games {
		o = cli(t, srv.URL(), "--shards", "16", "status", g)
		requireOK(t, o)
		assert.Regexp(t, `(?m)^status\s+exited$`, o.stdout)
		// Without --shards the record is looked for at the single-Redis key.
		o = cli(t, srv.URL(), "status", g)
		assert.Equal(t, 1, o.code)
		assert.Contains(t, o.stderr, "no runtime record for game "+g)
	}
}

// register with --shards writes the record where rtmanager with the same
// --shards reads it: the game's shard.
func TestRegisterOnItsShard(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()
	_, l := shardedLayout(t, testShards, false)
	o := cli(t, srv.URL(), "--shards", "16", "register", "g-7f3a2c", "--container", "c1", "--endpoint", "127.0.0.1:9", "--runtime", "docker")
	requireOK(t, o)
	key := "rtmanager:" + l.HashTag(l.ShardOf("g-7f3a2c")) + ":runtime:g-7f3a2c"
	h, err := c.HGetAll(tctx(t), key).Result()
	require.NoError(t, err)
	assert.Equal(t, "c1", h["container_id"])
	n, err := c.Exists(tctx(t), "rtmanager:runtime:{g-7f3a2c}").Result()
	require.NoError(t, err)
	assert.Zero(t, n)

	o = cli(t, srv.URL(), "--shards", "16", "--json", "status", "g-7f3a2c")
	requireOK(t, o)
	assert.Equal(t, "c1", decode[recordView](t, o.stdout).ContainerID)

	o = cli(t, srv.URL(), "--shards", "-1", "status", "g-7f3a2c")
	assert.Equal(t, 2, o.code)
	assert.Contains(t, o.stderr, "--shards")
}

// pending with --shards sums the group over every shard's key: pending and
// lag summed, pending per consumer summed, the oldest entries of all
// shards by id; JSON carries each shard.
func TestPendingAcrossShards(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()
	doc, l := shardedLayout(t, testShards, false)
	key := func(n int) string { return shardKey(t, doc, l, jobsKey, n) }
	for n := range testShards {
		require.NoError(t, c.XGroupCreateMkStream(tctx(t), key(n), defaultGroup, "0").Err())
	}
	add := func(n int, id string) {
		require.NoError(t, c.XAdd(tctx(t), &redis.XAddArgs{Stream: key(n), ID: id, Values: []any{"game_id", "g", "reason", "game_finished"}}).Err())
	}
	add(2, "1-0")
	add(9, "2-0")
	add(2, "3-0")
	add(2, "4-0")
	add(9, "4-0")
	read := func(n int, consumer string, count int64) {
		require.NoError(t, c.XReadGroup(tctx(t), &redis.XReadGroupArgs{
			Group: defaultGroup, Consumer: consumer, Streams: []string{key(n), ">"}, Count: count, Block: -1,
		}).Err())
	}
	read(2, "host-a", 2) // 1-0, 3-0
	read(2, "host-b", 1) // 4-0
	read(9, "host-b", 1) // 2-0; 4-0 not yet delivered

	o := cli(t, srv.URL(), "--shards", "16", "pending", "--json", "--count", "3")
	requireOK(t, o)
	v := decode[pendingView](t, o.stdout)
	assert.Equal(t, "runtime:{shard}:stop_jobs", v.Stream)
	assert.Equal(t, testShards, v.ShardCount)
	assert.Equal(t, int64(4), v.Pending)
	assert.Equal(t, int64(1), v.Lag)
	assert.Equal(t, int64(4), v.EntriesRead)
	assert.Equal(t, int64(2), v.GroupConsumers)
	assert.Equal(t, "1-0", v.Lowest)
	assert.Equal(t, "4-0", v.Highest)
	assert.Equal(t, []consumerView{{"host-a", 2}, {"host-b", 2}}, v.Consumers)
	require.Len(t, v.Oldest, 3)
	var oldest []shardID
	for _, e := range v.Oldest {
		require.NotNil(t, e.Shard)
		oldest = append(oldest, shardID{*e.Shard, e.ID})
	}
	assert.Equal(t, []shardID{{2, "1-0"}, {9, "2-0"}, {2, "3-0"}}, oldest)
	require.Len(t, v.Shards, testShards)
	s2, s9 := v.Shards[2], v.Shards[9]
	assert.Equal(t, pendingShardView{Shard: 2, Stream: key(2), Pending: 3, Lowest: "1-0", Highest: "4-0",
		Consumers: []consumerView{{"host-a", 2}, {"host-b", 1}}, GroupConsumers: 2, LastDeliveredID: "4-0",
		EntriesRead: 3, Lag: 0}, s2)
	assert.Equal(t, int64(1), s9.Pending)
	assert.Equal(t, int64(1), s9.Lag)
	assert.Equal(t, "2-0", s9.LastDeliveredID)
	assert.Zero(t, v.Shards[0].Pending)

	o = cli(t, srv.URL(), "--shards", "16", "pending")
	requireOK(t, o)
	assert.Regexp(t, `(?m)^stream\s+runtime:\{shard\}:stop_jobs \(16 shards\)$`, o.stdout)
	assert.Regexp(t, `(?m)^pending\s+4$`, o.stdout)
	assert.Regexp(t, `(?m)^lag \(not yet delivered\)\s+1$`, o.stdout)
	assert.Regexp(t, `(?m)^host-b\s+2$`, o.stdout)
	assert.Regexp(t, `(?m)^2\s+`+regexp.QuoteMeta(key(2))+`\s+3\s+0\s+4-0\s+3\s+2$`, o.stdout)
	assert.Regexp(t, `(?m)^9\s+`+regexp.QuoteMeta(key(9))+`\s+1\s+1\s+2-0\s+1\s+1$`, o.stdout)
	assert.Contains(t, o.stdout, "(14 of 16 shards: nothing pending, lag 0)")
	assert.Regexp(t, `(?m)^OLDEST PENDING\s+SHARD\s+CONSUMER`, o.stdout)
	assert.Regexp(t, `(?m)^2-0\s+9\s+host-b\s+\S+\s+1$`, o.stdout)

	// More shards than rtmanager's: the keys it never made are named.
	o = cli(t, srv.URL(), "--shards", "32", "pending")
	assert.Equal(t, 1, o.code)
	assert.Contains(t, o.stderr, "stream "+shardKey(t, doc, l, jobsKey, 16)+" does not exist (16 of 32 shard keys missing)")

	// A shard without the group.
	require.NoError(t, c.XGroupDestroy(tctx(t), key(5), defaultGroup).Err())
	o = cli(t, srv.URL(), "--shards", "16", "pending")
	assert.Equal(t, 1, o.code)
	assert.Contains(t, o.stderr, "stream "+key(5)+` has no consumer group "rtmanager"`)
}

// gameOnShard is a game id whose shard is n.
func gameOnShard(t *testing.T, l api.Layout, n int) string {
	t.Helper()
	for i := range 100000 {
		if g := fmt.Sprint("g", i); l.ShardOf(g) == n {
			return g
		}
	}
	t.Fatalf("no game on shard %d", n)
	return ""
}

func addDeadAt(t *testing.T, c redis.UniversalClient, key, id, game string) {
	t.Helper()
	require.NoError(t, c.XAdd(tctx(t), &redis.XAddArgs{Stream: key, ID: id, Values: []any{
		"dead_reason", "max_deliveries", "dead_error", "e", "original_id", "1-0", "delivery_count", "5",
		"dead_at_ms", "1764160000800", "game_id", game, "reason", "game_finished",
	}}).Err())
}

// dead list and replay with --shards: every shard's dead stream, merged by
// id; a letter goes back to the job stream of its own shard; an id on two
// shards must be named as SHARD/ID.
func TestDeadAcrossShards(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()
	doc, l := shardedLayout(t, testShards, false)
	dead := func(n int) string { return shardKey(t, doc, l, deadKey, n) }
	jobs := func(n int) string { return shardKey(t, doc, l, jobsKey, n) }
	g4, g12 := gameOnShard(t, l, 4), gameOnShard(t, l, 12)
	addDeadAt(t, c, dead(4), "5-0", g4)
	addDeadAt(t, c, dead(4), "7-0", g4)
	addDeadAt(t, c, dead(12), "7-0", g12)
	addDeadAt(t, c, dead(12), "9-0", g12)

	o := cli(t, srv.URL(), "--shards", "16", "dead", "list", "--json")
	requireOK(t, o)
	var got []shardID
	for _, v := range decode[[]deadView](t, o.stdout) {
		require.NotNil(t, v.Shard)
		got = append(got, shardID{*v.Shard, v.ID})
	}
	assert.Equal(t, []shardID{{4, "5-0"}, {4, "7-0"}, {12, "7-0"}, {12, "9-0"}}, got)

	o = cli(t, srv.URL(), "--shards", "16", "dead", "list", "--count", "3")
	requireOK(t, o)
	assert.Regexp(t, `^ID\s+SHARD\s+ORIGINAL_ID\s+DEAD_REASON`, o.stdout)
	assert.Regexp(t, `(?m)^7-0\s+12\s+1-0\s+max_deliveries\s+5\s+`+g12+`\s`, o.stdout)
	assert.Contains(t, o.stdout, "(3 of 4;")

	// A bare id on one shard only is that shard's.
	o = cli(t, srv.URL(), "--shards", "16", "dead", "replay", "5-0", "--json")
	requireOK(t, o)
	rep := decode[[]replayView](t, o.stdout)
	require.Len(t, rep, 1)
	require.NotNil(t, rep[0].Shard)
	assert.Equal(t, 4, *rep[0].Shard)
	js, err := c.XRange(tctx(t), jobs(4), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, js, 1)
	assert.Equal(t, rep[0].JobID, js[0].ID)
	assert.Equal(t, map[string]any{"game_id": g4, "reason": "game_finished"}, js[0].Values)

	// An id on two shards must be named.
	o = cli(t, srv.URL(), "--shards", "16", "dead", "replay", "7-0")
	assert.Equal(t, 2, o.code)
	assert.Contains(t, o.stderr, "7-0 is on the dead streams of shards 4, 12: name one as SHARD/7-0")
	o = cli(t, srv.URL(), "--shards", "16", "dead", "replay", "99/7-0")
	assert.Equal(t, 2, o.code)
	o = cli(t, srv.URL(), "dead", "replay", "12/7-0")
	assert.Equal(t, 2, o.code, "no shards without --shards")
	o = cli(t, srv.URL(), "--shards", "16", "dead", "replay", "5-0")
	assert.Equal(t, 1, o.code)
	assert.Contains(t, o.stderr, "already replayed")

	o = cli(t, srv.URL(), "--shards", "16", "dead", "replay", "12/7-0")
	requireOK(t, o)
	assert.Regexp(t, `^DEAD_ID\s+SHARD\s+ORIGINAL_ID\s+NEW_JOB_ID\n7-0\s+12\s+1-0\s+[0-9]+-[0-9]+\n$`, o.stdout)
	n, err := c.XLen(tctx(t), jobs(12)).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)

	// --all: the rest, each to its shard.
	o = cli(t, srv.URL(), "--shards", "16", "--json", "dead", "replay", "--all")
	requireOK(t, o)
	got = nil
	for _, v := range decode[[]replayView](t, o.stdout) {
		require.NotNil(t, v.Shard)
		got = append(got, shardID{*v.Shard, v.DeadID})
	}
	assert.Equal(t, []shardID{{4, "7-0"}, {12, "9-0"}}, got)
	for n, want := range map[int]int64{4: 2, 12: 2, 0: 0} {
		l, err := c.XLen(tctx(t), jobs(n)).Result()
		require.NoError(t, err)
		assert.Equal(t, want, l, "jobs of shard %d", n)
		l, err = c.XLen(tctx(t), dead(n)).Result()
		require.NoError(t, err)
		assert.Zero(t, l, "dead letters of shard %d", n)
	}
	// Nothing went to the single-Redis keys.
	n, err = c.Exists(tctx(t), jobsKey, deadKey).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
}
