package redisstream_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lerenn/asyncapi-codegen/pkg/extensions"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

const testShards = 16

// shardedWorld is a broker with S = 16 on a single Redis: the sharded
// layout (runtime:{rt-n}:stop_jobs …).
type shardedWorld struct {
	rdb    redis.UniversalClient
	layout api.Layout
	doc    *api.Document
}

func newShardedWorld(t *testing.T, rdb redis.UniversalClient) *shardedWorld {
	t.Helper()
	doc, err := api.Load()
	require.NoError(t, err)
	l, err := api.NewLayout(doc, testShards, false)
	require.NoError(t, err)
	require.True(t, l.Sharded)
	return &shardedWorld{rdb: rdb, layout: l, doc: doc}
}

func (w *shardedWorld) key(t testing.TB, address string, n int) string {
	ch, ok := w.doc.ChannelByAddress(address)
	require.True(t, ok, address)
	return w.layout.Key(ch, n)
}

// addJob appends a stop job for game to the game's shard; it returns the
// shard and the entry id.
func (w *shardedWorld) addJob(t testing.TB, game string, seq int) (int, string) {
	t.Helper()
	n := w.layout.ShardOf(game)
	id, err := w.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: w.key(t, jobs, n), Values: []string{
		"game_id", game, "reason", "game_finished", "requested_at_ms", strconv.Itoa(seq),
	}}).Result()
	require.NoError(t, err)
	return n, id
}

// results are the result entries by shard.
func (w *shardedWorld) results(t testing.TB) map[int][]redis.XMessage {
	out := map[int][]redis.XMessage{}
	for n := range testShards {
		if msgs := streamEntries(t, w.rdb, w.key(t, results, n)); len(msgs) > 0 {
			out[n] = msgs
		}
	}
	return out
}

func (w *shardedWorld) resultCount(t testing.TB) int {
	c := 0
	for _, msgs := range w.results(t) {
		c += len(msgs)
	}
	return c
}

func shardedOptions() redisstream.Options {
	o := fastOptions()
	o.Shards = testShards
	return o
}

// Jobs of many games spread over 16 shards are each answered exactly once,
// the result in the job's own shard, in each game's order; nothing stays
// pending and nothing is written to the unsharded keys.
func TestShardedJobsAnsweredOnceInTheirShard(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	w := newShardedWorld(t, rdb)
	const games, perGame = 60, 4
	var mu sync.Mutex
	order := map[string][]int64{}
	a := startApp(t, rdb, shardedOptions(), 6, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, ok := redisstream.DeliveryFrom(ctx)
		if !ok {
			return errors.New("no delivery")
		}
		g := string(msg.Payload.GameId)
		if want := w.key(t, jobs, w.layout.ShardOf(g)); d.Stream() != want {
			t.Errorf("game %s read from %s, want %s", g, d.Stream(), want)
		}
		mu.Lock()
		order[g] = append(order[g], *msg.Payload.RequestedAtMs)
		mu.Unlock()
		return answer(ctx, c, msg)
	})
	require.Equal(t, testShards, a.broker.Layout().Shards)
	require.True(t, a.broker.Layout().Sharded)

	type job struct{ shard int }
	sent := map[string]job{} // by shard/entry id
	used := map[int]bool{}
	for seq := range perGame {
		for g := range games {
			game := fmt.Sprintf("game-%d", g)
			n, id := w.addJob(t, game, seq)
			sent[fmt.Sprintf("%d/%s", n, id)] = job{shard: n}
			used[n] = true
		}
	}
	require.Greater(t, len(used), testShards/2, "the games spread over the shards")

	require.Eventually(t, func() bool { return w.resultCount(t) >= games*perGame }, 30*time.Second, 20*time.Millisecond)
	// No late duplicate.
	require.Never(t, func() bool { return w.resultCount(t) > games*perGame }, 300*time.Millisecond, 20*time.Millisecond)

	answered := map[string]int{}
	for n, msgs := range w.results(t) {
		for _, m := range msgs {
			ref := fmt.Sprintf("%d/%s", n, m.Values["job_id"])
			_, ok := sent[ref]
			require.True(t, ok, "result %v in shard %d answers no job of that shard", m.Values, n)
			assert.Equal(t, n, w.layout.ShardOf(m.Values["game_id"].(string)), "result of game %v in shard %d", m.Values["game_id"], n)
			answered[ref]++
		}
	}
	for ref := range sent {
		assert.Equal(t, 1, answered[ref], "job %s", ref)
	}
	mu.Lock()
	for g, seqs := range order {
		for i := 1; i < len(seqs); i++ {
			assert.Less(t, seqs[i-1], seqs[i], "game %s handled out of order: %v", g, seqs)
		}
	}
	mu.Unlock()
	for n := range testShards {
		p, err := rdb.XPending(context.Background(), w.key(t, jobs, n), group).Result()
		if used[n] {
			require.NoError(t, err)
			assert.Zero(t, p.Count, "shard %d pending", n)
		}
	}
	for _, k := range []string{jobs, results} {
		l, err := rdb.Exists(context.Background(), k).Result()
		require.NoError(t, err)
		assert.Zero(t, l, "unsharded key %s written", k)
	}
	keys := a.broker.Keys()
	assert.Contains(t, keys, w.key(t, jobs, 0))
	assert.Contains(t, keys, w.key(t, jobs, testShards-1))
	assert.Len(t, keys, 2*testShards, "start and stop jobs, 16 keys each")
	assert.Equal(t, w.layout.Keys(mustChannel(t, w.doc, results)), a.broker.ChannelKeys(results))
}

func mustChannel(t testing.TB, doc *api.Document, address string) *api.Channel {
	ch, ok := doc.ChannelByAddress(address)
	require.True(t, ok, address)
	return ch
}

// A result the handler publishes goes to the shard of the entry it
// answers, whatever its own game id hashes to: the same slot as the entry,
// in the entry's commit script.
func TestShardedResultGoesToTheEntrysShard(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	w := newShardedWorld(t, rdb)
	other := "other-game"
	game := ""
	for i := 0; game == ""; i++ {
		if g := fmt.Sprintf("g%d", i); w.layout.ShardOf(g) != w.layout.ShardOf(other) {
			game = g
		}
	}
	startApp(t, rdb, shardedOptions(), 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		res := runtimejobs.NewRuntimeJobResultMessage()
		res.Payload = runtimejobs.RuntimeJobResultSchema{
			JobId: d.ID(), GameId: other, Operation: "stop", Outcome: "success", CompletedAtMs: time.Now().UnixMilli(),
		}
		return c.SendAsSendJobResultOperation(ctx, res)
	})
	n, id := w.addJob(t, game, 1)
	waitLen(t, rdb, w.key(t, results, n), 1)
	msgs := streamEntries(t, rdb, w.key(t, results, n))
	require.Len(t, msgs, 1)
	assert.Equal(t, id, msgs[0].Values["job_id"])
	assert.Equal(t, other, msgs[0].Values["game_id"])
	assert.Empty(t, streamEntries(t, rdb, w.key(t, results, w.layout.ShardOf(other))))
}

// Lobby's side: a stop job sent outside a handler (the generated
// UserController) lands in the shard of its game id.
func TestShardedPublishGoesToTheShardOfTheGame(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	w := newShardedWorld(t, rdb)
	b, err := redisstream.New(rdb, shardedOptions())
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	u, err := runtimejobs.NewUserController(b)
	require.NoError(t, err)
	shards := map[int]bool{}
	for i := range 40 {
		game := fmt.Sprintf("lobby-game-%d", i)
		msg := runtimejobs.NewRuntimeStopJobMessage()
		msg.Payload.GameId = runtimejobs.GameIDSchema(game)
		msg.Payload.Reason = "game_finished"
		require.NoError(t, u.SendToReceiveStopJobOperation(context.Background(), msg))
		n := w.layout.ShardOf(game)
		shards[n] = true
		found := false
		for _, m := range streamEntries(t, rdb, w.key(t, jobs, n)) {
			found = found || m.Values["game_id"] == game
		}
		assert.True(t, found, "job of %s not in shard %d", game, n)
	}
	require.Greater(t, len(shards), 1)
	total := 0
	for n := range testShards {
		total += len(streamEntries(t, rdb, w.key(t, jobs, n)))
	}
	assert.Equal(t, 40, total, "each job written once")
}

// A sharded channel without a partition key cannot choose a shard: its
// Publish fails with a clear error and writes nothing.
func TestShardedPublishWithoutPartitionKeyFails(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	doc, err := api.Load()
	require.NoError(t, err)
	ch, ok := doc.ChannelByAddress(jobs)
	require.True(t, ok)
	ch.Stream.PartitionKey = ""
	o := shardedOptions()
	o.Contract = doc
	b, err := redisstream.New(rdb, o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	err = b.Publish(context.Background(), jobs, extensions.BrokerMessage{Payload: []byte(`{"game_id":"g1","reason":"game_finished"}`)})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no partition key")
	n, err := rdb.DBSize(context.Background()).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
}

// Retries, dead letters and claims happen per shard: a job that always
// fails is dead-lettered into its own shard's dead-letter stream, an
// undecodable one too, and entries a dead consumer left pending in two
// shards are claimed and answered there.
func TestShardedRetriesDeadLettersAndClaimsPerShard(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	w := newShardedWorld(t, rdb)
	ctx := context.Background()

	// Two games in different shards, left pending with a consumer that
	// died before the broker starts.
	var ghostGames []string
	seen := map[int]bool{}
	for i := 0; len(ghostGames) < 2; i++ {
		g := fmt.Sprintf("ghost-%d", i)
		if n := w.layout.ShardOf(g); !seen[n] {
			seen[n] = true
			ghostGames = append(ghostGames, g)
		}
	}
	ghostIDs := map[string]string{}
	for _, g := range ghostGames {
		n, id := w.addJob(t, g, 1)
		k := w.key(t, jobs, n)
		require.NoError(t, rdb.XGroupCreateMkStream(ctx, k, group, "0").Err())
		got, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "ghost", Streams: []string{k, ">"}, Count: 10}).Result()
		require.NoError(t, err)
		require.Len(t, got[0].Messages, 1)
		ghostIDs[g] = id
	}

	o := shardedOptions()
	o.MaxDeliveries = 2
	var mu sync.Mutex
	counts := map[string][]int64{}
	startApp(t, rdb, o, 2, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		g := string(msg.Payload.GameId)
		mu.Lock()
		counts[g] = append(counts[g], d.Count())
		mu.Unlock()
		if g == "bad-game" {
			return errors.New("always fails")
		}
		return answer(ctx, c, msg)
	})
	badShard, badID := w.addJob(t, "bad-game", 1)
	undShard := w.layout.ShardOf("undecodable-game")
	undID, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: w.key(t, jobs, undShard), Values: []string{"game_id", "undecodable-game"}}).Result()
	require.NoError(t, err)

	deadKey := w.key(t, dead, badShard)
	require.Eventually(t, func() bool {
		for _, m := range streamEntries(t, rdb, deadKey) {
			if m.Values[redisstream.FieldOriginalID] == badID && m.Values["game_id"] == "bad-game" {
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "dead letter of the failing job in its shard")
	mu.Lock()
	assert.Equal(t, []int64{1, 2}, counts["bad-game"], "retried once in its shard, then dead-lettered")
	mu.Unlock()
	undDead := w.key(t, dead, undShard)
	require.Eventually(t, func() bool {
		for _, m := range streamEntries(t, rdb, undDead) {
			if m.Values[redisstream.FieldOriginalID] == undID && m.Values[redisstream.FieldDeadReason] == redisstream.DeadUndecodable {
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "undecodable job dead-lettered in its shard")

	for _, g := range ghostGames {
		n := w.layout.ShardOf(g)
		require.Eventually(t, func() bool {
			for _, m := range streamEntries(t, rdb, w.key(t, results, n)) {
				if m.Values["job_id"] == ghostIDs[g] && m.Values["game_id"] == g {
					return true
				}
			}
			return false
		}, 20*time.Second, 20*time.Millisecond, "claimed job of %s answered in shard %d", g, n)
		mu.Lock()
		assert.Equal(t, []int64{2}, counts[g], "claimed from the dead consumer: second delivery")
		mu.Unlock()
		p, err := rdb.XPending(ctx, w.key(t, jobs, n), group).Result()
		require.NoError(t, err)
		assert.Zero(t, p.Count)
	}
	// Nothing of it leaked into another shard's dead letters.
	total := 0
	for n := range testShards {
		total += len(streamEntries(t, rdb, w.key(t, dead, n)))
	}
	assert.Equal(t, 2, total)
}

// A group-less subscription (a user controller following results) sees
// the results of every shard.
func TestShardedFollowerSeesEveryShard(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	w := newShardedWorld(t, rdb)
	b, err := redisstream.New(rdb, shardedOptions())
	require.NoError(t, err)
	u, err := runtimejobs.NewUserController(b)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
		u.Close(ctx)
	})
	var mu sync.Mutex
	got := map[string]bool{}
	require.NoError(t, u.SubscribeToSendJobResultOperation(context.Background(), func(_ context.Context, msg runtimejobs.RuntimeJobResultMessage) error {
		mu.Lock()
		got[msg.Payload.GameId] = true
		mu.Unlock()
		return nil
	}))
	shards := map[int]bool{}
	for i := range 30 {
		g := fmt.Sprintf("followed-%d", i)
		n := w.layout.ShardOf(g)
		shards[n] = true
		require.NoError(t, rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: w.key(t, results, n), Values: []string{
			"job_id", "1-0", "game_id", g, "operation", "stop", "outcome", "success", "completed_at_ms", "1",
		}}).Err())
	}
	require.Greater(t, len(shards), 1)
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 30
	}, 20*time.Second, 20*time.Millisecond)
}

// Shards outside 0..16384 are refused; 0 takes the contract's count.
func TestShardsOption(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	for _, s := range []int{-1, api.MaxShardCount + 1} {
		_, err := redisstream.New(rdb, redisstream.Options{Shards: s})
		require.Error(t, err, "shards %d", s)
	}
	b, err := redisstream.New(rdb, redisstream.Options{})
	require.NoError(t, err)
	assert.Equal(t, 1, b.Layout().Shards)
	assert.False(t, b.Layout().Sharded, "contract count 1, single Redis: plain addresses")
	assert.Equal(t, []string{jobs}, b.ChannelKeys(jobs))
}

// The prefetch bounds the channel, not each shard: with every worker stuck,
// the broker holds at most Prefetch + S - 1 entries over all 16 keys (a
// key's read asks for at least one), however many wait in each shard.
func TestShardedPrefetchBoundsTheChannel(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	w := newShardedWorld(t, rdb)
	const prefetch, games = 40, 400
	gate := make(chan struct{})
	o := shardedOptions()
	o.Prefetch = prefetch
	o.ReadCount = 16          // 1 per key: a read of all 16 keys asks for 16
	o.ClaimIdle = time.Minute // no claims in this test
	o.ClaimInterval = 50 * time.Millisecond
	// Every shard has a backlog before the broker starts.
	for g := range games {
		w.addJob(t, fmt.Sprintf("bound-%d", g), 1)
	}
	a := startApp(t, rdb, o, 2, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		<-gate
		return answer(ctx, c, msg)
	})
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release) // before the app stops, should the test fail first
	held := func() int64 {
		var n int64
		for s := range testShards {
			p, err := rdb.XPending(context.Background(), w.key(t, jobs, s), group).Result()
			if err == nil {
				n += p.Count
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return held() >= prefetch/2 }, 20*time.Second, 10*time.Millisecond, "reads fill the prefetch")
	require.Never(t, func() bool { return held() > prefetch+testShards-1 }, time.Second, 20*time.Millisecond, "held past Prefetch + S - 1")
	release()
	require.Eventually(t, func() bool { return w.resultCount(t) == games }, 30*time.Second, 20*time.Millisecond)
	require.NoError(t, a.broker.Health())
}

// A shard whose group cannot be created (its job key holds a string) does
// not stop the others: their jobs are answered, Health names the key, and
// once the key is fixed its shard is read too.
func TestShardedBadKeyLeavesTheOtherShardsReading(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	w := newShardedWorld(t, rdb)
	ctx := context.Background()
	bad := w.layout.ShardOf("bad-shard-game")
	require.NoError(t, rdb.Set(ctx, w.key(t, jobs, bad), "not a stream", 0).Err())
	a := startApp(t, rdb, shardedOptions(), 2, answer)
	good := ""
	for i := 0; good == ""; i++ {
		if g := fmt.Sprintf("good-%d", i); w.layout.ShardOf(g) != bad {
			good = g
		}
	}
	n, id := w.addJob(t, good, 1)
	require.Eventually(t, func() bool {
		for _, m := range streamEntries(t, rdb, w.key(t, results, n)) {
			if m.Values["job_id"] == id {
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "a job of another shard is answered")
	require.Eventually(t, func() bool {
		err := a.broker.Health()
		return err != nil && strings.Contains(err.Error(), w.key(t, jobs, bad))
	}, 20*time.Second, 20*time.Millisecond, "Health names the bad key")

	require.NoError(t, rdb.Del(ctx, w.key(t, jobs, bad)).Err())
	_, badID := w.addJob(t, "bad-shard-game", 1)
	require.Eventually(t, func() bool {
		for _, m := range streamEntries(t, rdb, w.key(t, results, bad)) {
			if m.Values["job_id"] == badID {
				return true
			}
		}
		return false
	}, 20*time.Second, 20*time.Millisecond, "the fixed shard is read")
	require.Eventually(t, func() bool { return a.broker.Health() == nil }, 20*time.Second, 20*time.Millisecond)
}
