package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/metrics"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

const testShards = 16

// sharded is a console on a layout of testShards shards on one
// redis-server, with the layout's keys at hand.
type sharded struct {
	*fixture
	layout                  api.Layout
	stop, stopDead, results *api.Channel
}

func newSharded(t *testing.T, opts Options) *sharded {
	t.Helper()
	doc, err := api.Load()
	require.NoError(t, err)
	l, err := api.NewLayout(doc, testShards, false)
	require.NoError(t, err)
	require.True(t, l.Sharded)
	opts.Layout = l
	rs := testredis.Start(t)
	rdb := rs.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	s := &sharded{fixture: newFixtureOn(t, rdb, opts), layout: l}
	for _, x := range []struct {
		ch   **api.Channel
		addr string
	}{{&s.stop, runtimejobs.StopJobsChannelPath}, {&s.stopDead, runtimejobs.StopJobsDeadChannelPath}, {&s.results, runtimejobs.JobResultsChannelPath}} {
		var ok bool
		*x.ch, ok = doc.ChannelByAddress(x.addr)
		require.True(t, ok, x.addr)
	}
	return s
}

// gamesInShards returns k game ids whose shards differ.
func gamesInShards(l api.Layout, k int) []string {
	seen := map[int]bool{}
	var out []string
	for i := 0; len(out) < k; i++ {
		g := fmt.Sprintf("g-%d", i)
		if n := l.ShardOf(g); !seen[n] {
			seen[n] = true
			out = append(out, g)
		}
	}
	return out
}

// key is ch's key in game's shard.
func (s *sharded) key(ch *api.Channel, game string) string {
	return s.layout.Key(ch, s.layout.ShardOf(game))
}

// addShardResult appends a result to the game's shard, with id ("*" for a
// new one).
func (s *sharded) addShardResult(id, jobID, game, outcome string) string {
	s.t.Helper()
	got, err := s.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: s.key(s.results, game), ID: id, Values: []any{
		"job_id", jobID, "game_id", game, "operation", "stop", "outcome", outcome, "error_code", "", "error_message", "msg-" + game,
		"completed_at_ms", "1764160000420",
	}}).Result()
	require.NoError(s.t, err)
	return got
}

// addShardDead appends a stop-job dead letter for game to its shard.
func (s *sharded) addShardDead(id, game string) string {
	s.t.Helper()
	got, err := s.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: s.key(s.stopDead, game), ID: id, Values: []any{
		redisstream.FieldDeadReason, redisstream.DeadInvalid, redisstream.FieldDeadError, "bad " + game,
		redisstream.FieldOriginalID, "1764160000000-0", redisstream.FieldDeliveryCount, "1", redisstream.FieldDeadAtMS, "1764160000800",
		"game_id", game, "reason", "admin_request",
	}}).Result()
	require.NoError(s.t, err)
	return got
}

func TestShardedOverviewTotalsOverShards(t *testing.T) {
	ctx := context.Background()
	s := newSharded(t, Options{})
	g := gamesInShards(s.layout, 3)
	// Shard of g[0]: 4 jobs, 2 to worker-a; g[1]: 2 jobs, 1 to worker-a;
	// g[2]: 3 jobs, 1 to worker-b.
	for i, x := range []struct {
		game     string
		n, k     int
		consumer string
	}{{g[0], 4, 2, "worker-a"}, {g[1], 2, 1, "worker-a"}, {g[2], 3, 1, "worker-b"}} {
		key := s.key(s.stop, x.game)
		for j := 0; j < x.n; j++ {
			require.NoError(t, s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"game_id", x.game, "reason", "admin_request"}}).Err())
		}
		require.NoError(t, s.rdb.XGroupCreate(ctx, key, "rtmanager", "0").Err(), i)
		require.NoError(t, s.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "rtmanager", Consumer: x.consumer, Streams: []string{key, ">"}, Count: int64(x.k)}).Err())
	}
	s.addShardDead("*", g[0])
	s.addShardDead("*", g[2])

	code, body := s.get("/")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `<td class="length">9</td>`)
	assert.Contains(t, body, `<td class="lag">5</td>`)
	assert.Contains(t, body, `<td class="pending">4</td>`)
	assert.Contains(t, body, `<td>worker-a</td><td>3</td>`)
	assert.Contains(t, body, `<td>worker-b</td><td>1</td>`)
	assert.Contains(t, body, `>2</a> on <code>runtime:{shard}:stop_jobs:dead</code>`)
	assert.Contains(t, body, "Totals over 16 shards")
	// The oldest pending is the first one delivered, on g[0]'s shard, and
	// its link names the shard.
	assert.Contains(t, body, `href="/jobs?q=`+strconv.Itoa(s.layout.ShardOf(g[0]))+`%2f`)
}

func TestShardedOverviewCapsTheShardsItReads(t *testing.T) {
	doc, err := api.Load()
	require.NoError(t, err)
	l, err := api.NewLayout(doc, maxOverviewShards+6, false)
	require.NoError(t, err)
	rs := testredis.Start(t)
	rdb := rs.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	f := newFixtureOn(t, rdb, Options{Layout: l})
	_, body := f.get("/")
	assert.Contains(t, body, fmt.Sprintf("Totals over the first %d of %d shards", maxOverviewShards, maxOverviewShards+6))
}

func TestShardedResultsAreMergedAndFollowedLive(t *testing.T) {
	s := newSharded(t, Options{LivePoll: 20 * time.Millisecond})
	g := gamesInShards(s.layout, 3)
	// The same entry id on two shards: both shown, each with its shard.
	s.addShardResult("5-0", "1-0", g[0], "success")
	s.addShardResult("5-0", "1-0", g[1], "failure")
	s.addShardResult("7-0", "2-0", g[2], "success")

	code, body := s.get("/jobs")
	require.Equal(t, http.StatusOK, code)
	i2, i1, i0 := strings.Index(body, `href="/games/`+g[2]+`"`), strings.Index(body, `href="/games/`+g[1]+`"`), strings.Index(body, `href="/games/`+g[0]+`"`)
	require.True(t, i2 >= 0 && i1 >= 0 && i0 >= 0, "every shard's results are listed")
	assert.True(t, i2 < i1 && i1 < i0, "newest first: by id, then by shard")
	assert.Contains(t, body, `href="/jobs?q=`+strconv.Itoa(s.layout.ShardOf(g[1]))+`%2f1-0"`)
	_, body = s.get("/jobs?outcome=failure")
	assert.Contains(t, body, `href="/games/`+g[1]+`"`)
	assert.NotContains(t, body, `href="/games/`+g[0]+`"`)

	// The page's live stream goes on from every shard's newest result.
	live := regexpLive.FindStringSubmatch(body)
	require.Len(t, live, 2, "the jobs page has a live URL")
	u, err := url.Parse(strings.ReplaceAll(live[1], "&amp;", "&"))
	require.NoError(t, err)
	assert.Len(t, strings.Split(u.Query().Get("after"), ","), testShards)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := openLive(ctx, t, s.srv.URL+"/jobs/live?"+url.Values{"after": {u.Query().Get("after")}}.Encode())
	// New results on two shards, one with an id older than another
	// shard's newest: a single id cursor would lose it.
	s.addShardResult("6-0", "3-0", g[0], "success")
	s.addShardResult("*", "4-0", g[1], "success")
	var got []string
	deadline := time.After(20 * time.Second)
	for len(got) < 2 {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "the stream ended; got %q", got)
			if strings.HasPrefix(l, "data: ") {
				got = append(got, l)
			}
		case <-deadline:
			t.Fatalf("got %q", got)
		}
	}
	assert.Contains(t, strings.Join(got, "\n"), `"job_id":"3-0"`)
	assert.Contains(t, strings.Join(got, "\n"), `"job_id":"4-0"`)
	assert.NotContains(t, strings.Join(got, "\n"), `"job_id":"1-0"`, "nothing before the cursor")
}

func TestShardedLiveRefusesAOneIDCursor(t *testing.T) {
	s := newSharded(t, Options{})
	code, _ := s.get("/jobs/live?after=1-0")
	assert.Equal(t, http.StatusBadRequest, code)
}

func TestShardedGamePageReadsTheGamesShard(t *testing.T) {
	ctx := context.Background()
	s := newSharded(t, Options{})
	g := gamesInShards(s.layout, 2)
	game, other := g[0], g[1]
	st := runtimestore.New(s.rdb, runtimestore.Options{Layout: s.layout})
	_, err := st.Register(ctx, stopruntime.Record{GameID: game, Status: "running", ContainerID: "c-1", EngineEndpoint: "127.0.0.1:7000", Runtime: "none"})
	require.NoError(t, err)
	const job = "1764160000000-0"
	begin, err := st.BeginStop(ctx, stopruntime.BeginRequest{GameID: game, JobID: job, NowMS: 1, TakeoverMS: 1000})
	require.NoError(t, err)
	require.Equal(t, stopruntime.BeginStarted, begin.Verdict)
	_, err = st.FinishStop(ctx, stopruntime.FinishRequest{GameID: game, JobID: job, NowMS: 2, Status: "stopped",
		Result: stopruntime.StoredResult{Outcome: "success", ContainerID: "c-1"}},
		stopruntime.Operation{GameID: game, Operation: "stop", Source: "lobby_stream", SourceRef: job, Outcome: "success", StartedAtMS: 1, FinishedAtMS: 2})
	require.NoError(t, err)
	s.addShardResult("*", job, game, "success")
	// A result naming the game on another shard's stream is not read.
	require.NoError(t, s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.key(s.results, other), Values: []any{"job_id", "9-0", "game_id", game, "outcome", "failure", "error_message", "wrong shard"}}).Err())

	code, body := s.get("/games/" + game)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `<strong id="status">stopped</strong>`)
	assert.Contains(t, body, "msg-"+game)
	assert.Contains(t, body, `<td>lobby_stream <a href="/jobs?q=`+job+`">`)
	assert.NotContains(t, body, "wrong shard")

	// The job's timeline, by its shard and id or by the bare id.
	n := strconv.Itoa(s.layout.ShardOf(game))
	for _, q := range []string{n + "/" + job, job} {
		code, body = s.get("/jobs?q=" + url.QueryEscape(q))
		require.Equal(t, http.StatusOK, code, q)
		assert.Contains(t, body, `<td class="kind">result</td>`, q)
		assert.Contains(t, body, `<td class="kind">operation</td>`, q)
	}
	code, _ = s.get("/jobs?q=" + url.QueryEscape(strconv.Itoa(testShards)+"/"+job))
	assert.Equal(t, http.StatusBadRequest, code, "no such shard")
}

func TestShardedGamesListFindsEveryShardsRecords(t *testing.T) {
	ctx := context.Background()
	s := newSharded(t, Options{})
	st := runtimestore.New(s.rdb, runtimestore.Options{Layout: s.layout})
	g := gamesInShards(s.layout, 5)
	for i, game := range g {
		status := "running"
		if i%2 == 1 {
			status = "failed"
		}
		_, err := st.Register(ctx, stopruntime.Record{GameID: game, Status: status, Runtime: "none"})
		require.NoError(t, err)
	}
	// A record key of another shard count: not one of this layout's.
	require.NoError(t, s.rdb.HSet(ctx, "rtmanager:{rt-99}:runtime:g-stray", "status", "running").Err())
	// The plain layout's record: not read either.
	require.NoError(t, s.rdb.HSet(ctx, "rtmanager:runtime:{g-plain}", "status", "running").Err())

	_, body := s.get("/games")
	for _, game := range g {
		assert.Contains(t, body, `href="/games/`+game+`"`)
	}
	assert.NotContains(t, body, "g-stray")
	assert.NotContains(t, body, "g-plain")
	_, body = s.get("/games?status=failed")
	assert.Contains(t, body, `href="/games/`+g[1]+`"`)
	assert.NotContains(t, body, `href="/games/`+g[0]+`"`)
}

func TestShardedDeadLettersAreReplayedIntoTheirShard(t *testing.T) {
	ctx := context.Background()
	s := newSharded(t, Options{Token: testToken})
	g := gamesInShards(s.layout, 2)
	na, nb := s.layout.ShardOf(g[0]), s.layout.ShardOf(g[1])
	// The same id on both shards' dead streams.
	s.addShardDead("7-0", g[0])
	s.addShardDead("7-0", g[1])
	refA, refB := fmt.Sprintf("%d/7-0", na), fmt.Sprintf("%d/7-0", nb)

	code, body := s.get("/dead")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `<span id="dead-total">2</span>`)
	assert.Contains(t, body, `data-id="`+refA+`"`)
	assert.Contains(t, body, `data-id="`+refB+`"`)

	auth := map[string]string{"Authorization": "Bearer " + testToken}
	code, body, _ = s.post("/dead/replay", url.Values{"id": {refB}}, auth)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "bad "+g[1])
	assert.NotContains(t, body, "bad "+g[0])

	code, body, _ = s.post("/dead/replay", url.Values{"id": {refB}, "confirm": {"yes"}}, auth)
	require.Equal(t, http.StatusOK, code, body)
	jobs, err := s.rdb.XRange(ctx, s.key(s.stop, g[1]), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, jobs, 1, "replayed onto the job stream of its own shard")
	assert.Equal(t, g[1], jobs[0].Values["game_id"])
	assert.Contains(t, body, fmt.Sprintf(`href="/jobs?q=%d%%2f%s"`, nb, jobs[0].ID))
	for n := 0; n < testShards; n++ {
		if n != nb {
			l, err := s.rdb.XLen(ctx, s.layout.Key(s.stop, n)).Result()
			require.NoError(t, err)
			assert.Zero(t, l, "shard %d's job stream", n)
		}
	}
	left, err := s.rdb.XLen(ctx, s.key(s.stopDead, g[0])).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), left, "the other shard's letter with the same id stays")
	gone, err := s.rdb.XLen(ctx, s.key(s.stopDead, g[1])).Result()
	require.NoError(t, err)
	assert.Zero(t, gone)

	// A bare id names no shard when there are several.
	code, _, _ = s.post("/dead/replay", url.Values{"id": {"7-0"}, "confirm": {"yes"}}, auth)
	assert.Equal(t, http.StatusBadRequest, code)
}

func TestShardedDeadLettersArePagedAcrossShards(t *testing.T) {
	s := newSharded(t, Options{})
	g := gamesInShards(s.layout, 3)
	seen := map[string]bool{}
	want := 0
	for i := 1; i <= 25; i++ {
		for _, game := range g {
			s.addShardDead(fmt.Sprintf("%d-0", i), game)
			want++
		}
	}
	path := "/dead"
	for pages := 0; pages < 10; pages++ {
		_, body := s.get(path)
		for _, m := range regexpDataID.FindAllStringSubmatch(body, -1) {
			assert.False(t, seen[m[1]], "shown twice: %s", m[1])
			seen[m[1]] = true
		}
		older := regexpOlder.FindStringSubmatch(body)
		if older == nil {
			break
		}
		path = strings.ReplaceAll(older[1], "&amp;", "&")
	}
	assert.Len(t, seen, want, "every letter of every shard once")
}

var (
	regexpLive   = regexp.MustCompile(`data-live="([^"]+)"`)
	regexpDataID = regexp.MustCompile(`data-id="([^"]+)"`)
	regexpOlder  = regexp.MustCompile(`href="(/dead\?[^"]+)" id="older"`)
)

var (
	regexpGame = regexp.MustCompile(`<td><a href="/games/([^"]+)">`)
	regexpNext = regexp.MustCompile(`href="(/games\?[^"]+)" id="next"`)
)

// The rates come from the process's counters, whose stream label is the
// channel's address with any number of shards.
func TestShardedOverviewShowsDeadLetterRates(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	s := newSharded(t, Options{Metrics: reg})
	t0 := time.Now()
	s.c.rates.mu.Lock()
	s.c.rates.ring = nil
	s.c.rates.mu.Unlock()
	s.c.rates.take(t0)
	for i := 0; i < 3; i++ {
		m.DeadLettered(runtimejobs.StopJobsChannelPath, "invalid")
	}
	s.c.rates.take(t0.Add(time.Minute))
	_, body := s.get("/")
	assert.Contains(t, body, `<tr><th>dead letters per minute (newest first)</th><td>3</td></tr>`)
}
