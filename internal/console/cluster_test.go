package console

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// On a Redis Cluster of three masters with 16 shards the console reads
// every shard (one key per command: no CROSSSLOT): the overview's totals,
// the games list paged over the masters, a dead letter replayed into its
// own shard.
func TestClusterConsoleOnShards(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := testredis.StartCluster(t, testredis.ClusterOptions{Masters: 3})
	cc := cl.Client()
	t.Cleanup(func() { _ = cc.Close() })
	doc, err := api.Load()
	require.NoError(t, err)
	l, err := api.NewLayout(doc, testShards, true)
	require.NoError(t, err)
	c, err := New(cc, Options{Contract: doc, Layout: l, Token: testToken})
	require.NoError(t, err)
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(func() { c.Close(); srv.Close() })
	f := &fixture{t: t, c: c, srv: srv}
	stop, _ := doc.ChannelByAddress(runtimejobs.StopJobsChannelPath)
	stopDead, _ := doc.ChannelByAddress(runtimejobs.StopJobsDeadChannelPath)

	// One job on every shard, delivered; 600 records, more than one page
	// holds, so the list goes on from one master to the next.
	games := gamesInShards(l, testShards)
	masters := map[string]bool{}
	for _, g := range games {
		key := l.Key(stop, l.ShardOf(g))
		require.NoError(t, cc.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: []any{"game_id", g, "reason", "admin_request"}}).Err())
		require.NoError(t, cc.XGroupCreate(ctx, key, "rtmanager", "0").Err())
		require.NoError(t, cc.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "rtmanager", Consumer: "worker-a", Streams: []string{key, ">"}, Count: 1}).Err())
		m, err := cl.MasterOf(ctx, key)
		require.NoError(t, err)
		masters[m.ID()] = true
	}
	require.Len(t, masters, 3, "the shards sit on every master")
	st := runtimestore.New(cc, runtimestore.Options{Layout: l})
	want := map[string]bool{}
	for i := 0; i < 600; i++ {
		g := fmt.Sprintf("game-%d", i)
		want[g] = true
		_, err := st.Register(ctx, stopruntime.Record{GameID: g, Status: "running", Runtime: "none"})
		require.NoError(t, err)
	}

	code, body := f.get("/")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, fmt.Sprintf(`<td class="length">%d</td>`, testShards))
	assert.Contains(t, body, fmt.Sprintf(`<td class="pending">%d</td>`, testShards))
	assert.Contains(t, body, `<td class="lag">0</td>`)
	assert.Contains(t, body, fmt.Sprintf(`<td>worker-a</td><td>%d</td>`, testShards))
	assert.NotContains(t, body, "CROSSSLOT")
	assert.NotContains(t, body, `class="problem"`)

	// The games list, page by page over the masters.
	seen := map[string]bool{}
	path := "/games"
	pages := 0
	for {
		pages++
		require.LessOrEqual(t, pages, 20, "the pages never end")
		code, body = f.get(path)
		require.Equal(t, http.StatusOK, code, body)
		for _, m := range regexpGame.FindAllStringSubmatch(body, -1) {
			seen[m[1]] = true
		}
		next := regexpNext.FindStringSubmatch(body)
		if next == nil {
			break
		}
		path = strings.ReplaceAll(next[1], "&amp;", "&")
	}
	assert.Equal(t, want, seen)
	assert.GreaterOrEqual(t, pages, 2, "the list went on from one master to the next")

	// A dead letter replayed onto its own shard's job stream.
	g := games[5]
	n := l.ShardOf(g)
	deadID, err := cc.XAdd(ctx, &redis.XAddArgs{Stream: l.Key(stopDead, n), Values: []any{
		redisstream.FieldDeadReason, redisstream.DeadInvalid, redisstream.FieldDeadError, "bad",
		redisstream.FieldOriginalID, "1-0", redisstream.FieldDeliveryCount, "1", redisstream.FieldDeadAtMS, "1",
		"game_id", g, "reason", "admin_request",
	}}).Result()
	require.NoError(t, err)
	_, body = f.get("/dead")
	assert.Contains(t, body, fmt.Sprintf(`data-id="%d/%s"`, n, deadID))
	code, body, _ = f.post("/dead/replay", url.Values{"id": {fmt.Sprintf("%d/%s", n, deadID)}, "confirm": {"yes"}},
		map[string]string{"Authorization": "Bearer " + testToken})
	require.Equal(t, http.StatusOK, code, body)
	assert.NotContains(t, body, "CROSSSLOT")
	jobs, err := cc.XRange(ctx, l.Key(stop, n), "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, jobs, 2, "the shard's job and the replayed one")
	assert.Equal(t, g, jobs[1].Values["game_id"])
	left, err := cc.XLen(ctx, l.Key(stopDead, n)).Result()
	require.NoError(t, err)
	assert.Zero(t, left)

	// The other pages answer too.
	for _, p := range []string{"/jobs", "/jobs?q=" + jobs[1].ID, "/games/game-3"} {
		code, body = f.get(p)
		assert.Equal(t, http.StatusOK, code, p)
		assert.NotContains(t, body, "CROSSSLOT", p)
	}
}
