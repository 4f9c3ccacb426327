package redisstream_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/testredis"
)

// Entries a crashed consumer read and never acknowledged are claimed by a
// live consumer of the group once idle for ClaimIdle.
func TestClaimsEntriesOfDeadConsumer(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, jobs, group, "0").Err())
	for i := 0; i < 5; i++ {
		addJob(t, rdb, "game_id", fmt.Sprintf("g%d", i), "reason", "game_finished")
	}
	// A consumer reads and dies.
	_, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "crashed", Streams: []string{jobs, ">"}, Count: 10}).Result()
	require.NoError(t, err)
	require.Equal(t, int64(5), pendingCount(t, rdb))

	start := time.Now()
	startApp(t, rdb, fastOptions(), 2, answer)
	waitLen(t, rdb, results, 5)
	assert.GreaterOrEqual(t, time.Since(start), 400*time.Millisecond, "claimed only after ClaimIdle")
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 0 }, 5*time.Second, 10*time.Millisecond)
	assert.Len(t, streamEntries(t, rdb, results), 5)
}

// An entry handled for longer than ClaimIdle is kept fresh, so a live
// consumer's work is not claimed by another one.
func TestLongHandlingIsNotClaimedByOthers(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	var calls atomic.Int32
	slow := func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		calls.Add(1)
		time.Sleep(1500 * time.Millisecond) // three times ClaimIdle
		return answer(ctx, c, msg)
	}
	opts := fastOptions()
	opts.ClaimIdle, opts.ClaimInterval = 500*time.Millisecond, 100*time.Millisecond
	startApp(t, rdb, opts, 1, slow)
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	require.Eventually(t, func() bool { return calls.Load() == 1 }, 5*time.Second, 10*time.Millisecond)
	startApp(t, rdb, opts, 1, slow) // another consumer, eager to claim
	waitLen(t, rdb, results, 1)
	time.Sleep(700 * time.Millisecond)
	assert.Equal(t, int32(1), calls.Load(), "handled once")
	assert.Len(t, streamEntries(t, rdb, results), 1)
}

// Consumers that are gone and own nothing pending are removed after
// ConsumerIdle; one that still owns entries is kept.
func TestIdleConsumersWithNothingPendingAreRemoved(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, jobs, group, "0").Err())
	require.NoError(t, rdb.XGroupCreateConsumer(ctx, jobs, group, "ghost").Err())
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	_, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "holder", Streams: []string{jobs, ">"}, Count: 1}).Result()
	require.NoError(t, err)

	opts := fastOptions()
	opts.ConsumerIdle = 300 * time.Millisecond
	opts.ClaimIdle = time.Hour // keep "holder"'s entry where it is
	opts.ClaimInterval = 50 * time.Millisecond
	opts.Consumer = "live"
	startApp(t, rdb, opts, 1, answer)
	names := func() map[string]bool {
		cs, err := rdb.XInfoConsumers(ctx, jobs, group).Result()
		require.NoError(t, err)
		out := map[string]bool{}
		for _, c := range cs {
			out[c.Name] = true
		}
		return out
	}
	require.Eventually(t, func() bool { return !names()["ghost"] }, 5*time.Second, 20*time.Millisecond, "ghost consumer never removed")
	got := names()
	assert.True(t, got["holder"], "a consumer owning pending entries is kept")
}

// Entries a dead consumer left are claimed ahead of new entries, even while
// a backlog keeps the process's prefetch full.
func TestClaimsGoAheadOfABacklog(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, jobs, group, "0").Err())
	for i := 0; i < 3; i++ {
		addJob(t, rdb, "game_id", fmt.Sprintf("orphan%d", i), "reason", "game_finished")
	}
	_, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "crashed", Streams: []string{jobs, ">"}, Count: 3}).Result()
	require.NoError(t, err)
	pipe := rdb.Pipeline()
	for i := 0; i < 400; i++ {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: jobs, Values: []string{"game_id", fmt.Sprintf("new%d", i), "reason", "game_finished"}})
	}
	_, err = pipe.Exec(ctx)
	require.NoError(t, err)

	var mu sync.Mutex
	var order []string
	opts := fastOptions()
	opts.ClaimIdle, opts.ClaimInterval = 300*time.Millisecond, 50*time.Millisecond
	opts.ReadCount, opts.Prefetch = 4, 4
	startApp(t, rdb, opts, 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		mu.Lock()
		order = append(order, string(msg.Payload.GameId))
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // the backlog takes about 2 s
		return answer(ctx, c, msg)
	})
	waitLen(t, rdb, results, 403)
	mu.Lock()
	defer mu.Unlock()
	last := 0
	for i, g := range order {
		if strings.HasPrefix(g, "orphan") {
			last = i
		}
	}
	assert.Less(t, last, 200, "orphans handled at position %d of %d: claims waited for the backlog", last, len(order))
}

// A dead consumer's entries behind fresh ones at the head of the pending
// list (entries another consumer has just claimed) are claimed by a
// process that starts, at once: XAUTOCLAIM looks at ten entries per entry
// it may claim, and a process that has read nothing yet may claim one, so
// its first call comes back empty with the list not done. The round went
// on only at the next interval, and again stopped there (rtchaos kill).
func TestClaimsPastFreshEntriesAtTheHeadOfThePendingList(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, jobs, group, "0").Err())
	var fresh []string
	for i := 0; i < 40; i++ {
		fresh = append(fresh, addJob(t, rdb, "game_id", fmt.Sprintf("fresh%d", i), "reason", "game_finished"))
	}
	for i := 0; i < 5; i++ {
		addJob(t, rdb, "game_id", fmt.Sprintf("orphan%d", i), "reason", "game_finished")
	}
	_, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "crashed", Streams: []string{jobs, ">"}, Count: 100}).Result()
	require.NoError(t, err)
	opts := fastOptions()
	opts.ClaimIdle, opts.ClaimInterval = 500*time.Millisecond, time.Minute
	time.Sleep(opts.ClaimIdle + 100*time.Millisecond) // all 45 idle
	// A live consumer takes the 40 at the head: fresh again, and its own.
	require.NoError(t, rdb.XClaimJustID(ctx, &redis.XClaimArgs{Stream: jobs, Group: group, Consumer: "alive", Messages: fresh}).Err())

	startApp(t, rdb, opts, 1, answer)
	orphans := func() int {
		n := 0
		for _, m := range streamEntries(t, rdb, results) {
			if g, _ := m.Values["game_id"].(string); strings.HasPrefix(g, "orphan") {
				n++
			}
		}
		return n
	}
	// Well before the next interval (a minute), and before the 40 are idle.
	require.Eventually(t, func() bool { return orphans() == 5 }, 5*time.Second, 20*time.Millisecond,
		"the orphans behind the fresh entries were not claimed at start")
}

// More entries left by a dead consumer than there is room for (twice the
// prefetch) are taken as the workers free room, in the same round: a
// round that stopped at the room left the rest to the next interval.
func TestClaimRoundTakesTheRestAsRoomFrees(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, jobs, group, "0").Err())
	for i := 0; i < 20; i++ {
		addJob(t, rdb, "game_id", fmt.Sprintf("orphan%d", i), "reason", "game_finished")
	}
	_, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "crashed", Streams: []string{jobs, ">"}, Count: 100}).Result()
	require.NoError(t, err)
	opts := fastOptions()
	opts.ClaimIdle, opts.ClaimInterval = 300*time.Millisecond, 10*time.Second
	opts.ReadCount, opts.Prefetch = 4, 4 // room for 8 claimed
	time.Sleep(opts.ClaimIdle + 100*time.Millisecond)
	startApp(t, rdb, opts, 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		time.Sleep(10 * time.Millisecond)
		return answer(ctx, c, msg)
	})
	// Well within the round (half an interval: 5 s); the next is 10 s away.
	require.Eventually(t, func() bool { return len(streamEntries(t, rdb, results)) == 20 }, 4*time.Second, 20*time.Millisecond,
		"the entries past the room waited for the next round")
}
