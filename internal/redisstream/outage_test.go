package redisstream_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

func TestGroupRecreatedAfterNoGroup(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	startApp(t, rdb, fastOptions(), 1, answer)
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	waitLen(t, rdb, results, 1)

	// The group vanishes; entries added meanwhile are neither skipped nor replayed.
	require.NoError(t, rdb.XGroupDestroy(ctx, jobs, group).Err())
	addJob(t, rdb, "game_id", "g2", "reason", "game_finished")
	waitLen(t, rdb, results, 2)

	// The whole stream vanishes.
	require.NoError(t, rdb.Del(ctx, jobs).Err())
	time.Sleep(300 * time.Millisecond)
	addJob(t, rdb, "game_id", "g3", "reason", "game_finished")
	waitLen(t, rdb, results, 3)
	time.Sleep(200 * time.Millisecond)
	var games []string
	for _, m := range streamEntries(t, rdb, results) {
		games = append(games, m.Values["game_id"].(string))
	}
	assert.Equal(t, []string{"g1", "g2", "g3"}, games)
}

// Redis is killed and restarted while jobs flow: every job is answered once.
func TestRedisRestartLosesNothing(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{AppendOnly: true})
	rdb := newClient(t, srv)
	a := startApp(t, rdb, fastOptions(), 4, answer)
	const n = 600
	for i := 0; i < n; i++ {
		for {
			err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: jobs, Values: []string{"game_id", fmt.Sprintf("g%d", i%50), "reason", "game_finished"}}).Err()
			if err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if i == n/3 || i == 2*n/3 {
			require.NoError(t, srv.Kill())
			require.Eventually(t, func() bool { return a.broker.Health() != nil }, 10*time.Second, 10*time.Millisecond, "not healthy while Redis is away")
			require.NoError(t, srv.Restart())
		}
	}
	require.Eventually(t, func() bool {
		l, _ := rdb.XLen(context.Background(), results).Result()
		p, _ := rdb.XPending(context.Background(), jobs, group).Result()
		return l >= n && p != nil && p.Count == 0
	}, 30*time.Second, 20*time.Millisecond)
	byJob := map[string]int{}
	for _, m := range streamEntries(t, rdb, results) {
		byJob[m.Values["job_id"].(string)]++
	}
	assert.Len(t, byJob, n, "every job answered")
	for id, c := range byJob {
		assert.Equal(t, 1, c, "job %s answered %d times", id, c)
	}
	require.Eventually(t, func() bool { return a.broker.Health() == nil }, 5*time.Second, 10*time.Millisecond)
}

// A retry that falls into a Redis outage goes on soon after Redis is back,
// not after the longest backoff.
func TestRetryResumesPromptlyAfterRedisIsBack(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{AppendOnly: true})
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.RetryBackoff, opts.MaxRetryBackoff = 200*time.Millisecond, 10*time.Second
	var calls atomic.Int32
	failed := make(chan struct{})
	startApp(t, rdb, opts, 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		if calls.Add(1) == 1 {
			close(failed)
			return errors.New("transient")
		}
		return answer(ctx, c, msg)
	})
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	<-failed
	require.NoError(t, srv.Kill())
	time.Sleep(3 * time.Second) // longer than go-redis's own retries
	require.NoError(t, srv.Restart())
	back := time.Now()
	waitLen(t, rdb, results, 1)
	assert.Less(t, time.Since(back), 4*time.Second, "the retry waited for the longest backoff")
}

// counts records the delivery counts handlers saw; handlers may still run
// while the test reads it.
type counts struct {
	mu   sync.Mutex
	seen []int64
}

func (c *counts) add(ctx context.Context) {
	d, _ := redisstream.DeliveryFrom(ctx)
	c.mu.Lock()
	c.seen = append(c.seen, d.Count())
	c.mu.Unlock()
}

func (c *counts) get() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int64(nil), c.seen...)
}

// A handler that fails because Redis went away is not charged a delivery:
// the job waits, dispatch pauses while Redis is away, and the job goes on
// soon after Redis is back, however long the outage.
func TestRedisOutageChargesNoDelivery(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{AppendOnly: true})
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.MaxDeliveries = 2
	var calls atomic.Int32
	var seen counts
	inHandler := make(chan struct{})
	redisDown := make(chan struct{})
	startApp(t, rdb, opts, 2, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		seen.add(ctx)
		if calls.Add(1) == 1 {
			close(inHandler)
			<-redisDown
		}
		// What the orchestrator does first: a Redis call.
		if err := rdb.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("begin stop: %w", err)
		}
		return answer(ctx, c, msg)
	})
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	<-inHandler
	require.NoError(t, srv.Kill())
	close(redisDown)
	time.Sleep(2 * time.Second)
	require.NoError(t, srv.Restart())
	back := time.Now()
	waitLen(t, rdb, results, 1)
	assert.Less(t, time.Since(back), 2*time.Second)
	n, _ := rdb.XLen(context.Background(), dead).Result()
	assert.Zero(t, n, "an outage is not the job's fault")
	got := seen.get()
	assert.Equal(t, int64(1), got[len(got)-1], "no delivery charged: %v", got)
	assert.LessOrEqual(t, len(got), 3, "no busy loop while Redis is away: %v", got)
}

// A handler's connection error that happened while Redis was away is not
// charged even when the handler returns only after Redis is back (a ping at
// that point would say Redis is fine).
func TestConnErrorDuringOutageSettledAfterItIsNotCharged(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{AppendOnly: true})
	rdb := newClient(t, srv)
	var calls atomic.Int32
	var seen counts
	inHandler := make(chan struct{})
	failed := make(chan struct{})
	pinged := make(chan error, 1)
	redisBack := make(chan struct{})
	a := startApp(t, rdb, fastOptions(), 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		seen.add(ctx)
		if calls.Add(1) == 1 {
			close(inHandler)
			<-failed
			err := rdb.Ping(ctx).Err()
			pinged <- err
			<-redisBack
			if err != nil {
				return fmt.Errorf("begin stop: %w", err)
			}
			return errors.New("redis answered while it was meant to be down")
		}
		return answer(ctx, c, msg)
	})
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	<-inHandler
	require.NoError(t, srv.Kill())
	// The reader's own reads notice the outage.
	require.Eventually(t, func() bool { return a.broker.Health() != nil }, 10*time.Second, 10*time.Millisecond)
	close(failed)
	require.Error(t, <-pinged, "the handler's ping while Redis is away")
	require.NoError(t, srv.Restart())
	require.Eventually(t, func() bool { return a.broker.Health() == nil }, 10*time.Second, 10*time.Millisecond, "the outage ends")
	close(redisBack)
	waitLen(t, rdb, results, 1)
	got := seen.get()
	assert.Equal(t, []int64{1, 1}, got, "the failure during the outage charged a delivery")
}
