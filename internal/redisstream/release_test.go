package redisstream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

// An entry waiting for its retry when its last worker leaves is let go,
// still pending; its retry timer then charges no delivery, and another
// consumer claims it with the right count.
func TestReleasedRetryIsNotChargedADelivery(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.RetryBackoff, opts.MaxRetryBackoff = 200*time.Millisecond, 200*time.Millisecond
	opts.ClaimIdle = time.Second
	opts.Consumer = "first"
	first := startApp(t, rdb, opts, 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		if msg.Payload.GameId == "x" {
			return errors.New("not now")
		}
		return answer(ctx, c, msg)
	})
	x := addJob(t, rdb, "game_id", "x", "reason", "game_finished")
	addJob(t, rdb, "game_id", "y", "reason", "game_finished")
	// y is handled after x's Nak: x waits for its retry.
	waitLen(t, rdb, results, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	first.ctrls[0].UnsubscribeFromAllChannels(ctx)

	counts := make(chan int64, 10)
	opts.Consumer = "second"
	startApp(t, rdb, opts, 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		counts <- d.Count()
		return answer(ctx, c, msg)
	})
	select {
	case n := <-counts:
		assert.Equal(t, int64(2), n, "read once, claimed once: no delivery charged by the released retry")
	case <-time.After(20 * time.Second):
		t.Fatal("the released entry was never claimed by the other consumer")
	}
	p, err := rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{Stream: jobs, Group: group, Start: x, End: x, Count: 1}).Result()
	require.NoError(t, err)
	if len(p) == 1 {
		assert.Equal(t, "second", p[0].Consumer)
	}
}

// Close does not wait out the retry backoff of a Nak'ed entry without a
// partition key: the entry is let go, still pending.
func TestCloseDoesNotWaitForTheRetryOfAKeylessEntry(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	const ch = "test:keyless"
	opts := fastOptions()
	opts.Groups = map[string]string{ch: "g"}
	opts.RetryBackoff, opts.MaxRetryBackoff = 8*time.Second, 8*time.Second
	b, err := redisstream.New(rdb, opts)
	require.NoError(t, err)
	sub, err := b.Subscribe(context.Background(), ch)
	require.NoError(t, err)
	nakd := make(chan struct{})
	go func() {
		for m := range sub.MessagesChannel() {
			m.Nak()
			close(nakd)
		}
	}()
	require.NoError(t, rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: ch, Values: []string{"payload", "{}"}}).Err())
	<-nakd
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, b.Close(ctx))
	assert.Less(t, time.Since(start), 3*time.Second, "Close waited for the retry backoff")
	n, err := rdb.XPending(context.Background(), ch, "g").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n.Count, "the entry stays pending")
	sub.Cancel(ctx)
}

// A second Close keeps to its own deadline while the first one waits for
// an in-flight handler.
func TestSecondCloseKeepsItsDeadline(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	a := startApp(t, rdb, fastOptions(), 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		started <- struct{}{}
		<-release
		return answer(ctx, c, msg)
	})
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	<-started
	b := a.broker
	firstDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		firstDone <- b.Close(ctx)
	}()
	require.Eventually(t, func() bool {
		_, err := b.Subscribe(context.Background(), jobs)
		return err != nil
	}, 5*time.Second, 5*time.Millisecond, "the first Close has begun")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	require.Error(t, b.Close(ctx), "the handler is still running")
	assert.Less(t, time.Since(start), 3*time.Second, "the second Close waited past its deadline")
	close(release)
	require.NoError(t, <-firstDone)
	assert.Len(t, streamEntries(t, rdb, results), 1)
}
