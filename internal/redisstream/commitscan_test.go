package redisstream

import (
	"context"
	"regexp"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

// xpendingCalls is how many XPENDING calls Redis has run (scripts' calls
// included).
func xpendingCalls(t *testing.T, rdb *redis.Client) int {
	t.Helper()
	info, err := rdb.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	m := regexp.MustCompile(`cmdstat_xpending:calls=(\d+)`).FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

// The commit script reads the ownership of a batch of neighbouring entries
// with one XPENDING, however many more entries the process holds (stops
// waiting in continuations); an entry the bounded scan does not reach, or
// that another consumer took, is read on its own and still committed or
// left alone as it should be.
func TestCommitReadsOwnershipOncePerBatch(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	b, err := New(rdb, Options{Consumer: "me"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close(ctx) })
	const stream, grp = "runtime:stop_jobs", "rtmanager"
	r := newReader(b, b.channel(stream))
	sh := r.shards[0]
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, stream, grp, "0").Err())
	var ids []string
	for i := 0; i < 400; i++ {
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"game_id", "g" + strconv.Itoa(i), "reason", "game_finished"}}).Result()
		require.NoError(t, err)
		ids = append(ids, id)
	}
	require.NoError(t, rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: grp, Consumer: "me", Streams: []string{stream, ">"}, Count: 400}).Err())
	// All 400 held, as a process with many stops waiting would.
	for _, id := range ids {
		r.q.hold(&Delivery{r: r, sh: sh, id: id})
	}
	stolen := ids[110]
	require.NoError(t, rdb.XClaim(ctx, &redis.XClaimArgs{Stream: stream, Group: grp, Consumer: "other", Messages: []string{stolen}}).Err())
	batchOf := func(ids []string) []commitReq {
		var batch []commitReq
		for _, id := range ids {
			batch = append(batch, commitReq{d: r.q.held[id]})
		}
		return batch
	}
	commit := func(ids []string) []commitOutcome {
		outs, err := r.commitScript(ctx, sh, batchOf(ids))
		require.NoError(t, err)
		return outs
	}

	// Ten neighbours: one XPENDING for all.
	before := xpendingCalls(t, rdb)
	for i, o := range commit(ids[100:110]) {
		assert.True(t, o.committed, ids[100+i])
	}
	assert.Equal(t, 1, xpendingCalls(t, rdb)-before, "XPENDING calls for ten neighbouring entries")

	// The stolen one among neighbours: one more call, for it alone.
	before = xpendingCalls(t, rdb)
	outs := commit(ids[110:120])
	assert.False(t, outs[0].committed, "the entry another consumer took")
	assert.False(t, outs[0].gone)
	for i, o := range outs[1:] {
		assert.True(t, o.committed, ids[111+i])
	}
	assert.Equal(t, 2, xpendingCalls(t, rdb)-before)

	// Spread over the whole range: the scan stops after 4 per entry, the
	// rest are read one by one, and all commit.
	spread := []string{ids[0], ids[150], ids[250], ids[399]}
	for i, o := range commit(spread) {
		assert.True(t, o.committed, spread[i])
	}
	// Committed already: no longer pending.
	for _, o := range commit(ids[100:102]) {
		assert.True(t, o.gone)
	}
	n, err := rdb.XPending(ctx, stream, grp).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(400-10-9-4), n.Count, "the stolen entry and the ones not committed stay pending")
}
