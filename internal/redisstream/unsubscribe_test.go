package redisstream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

// Unsubscribing right after subscribing removes the worker: the
// subscription's cancel signal cannot be taken back by Cancel itself (a
// buffered cancel channel let it, and the worker went on receiving).
func TestUnsubscribeRightAfterSubscribeRemovesTheWorker(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	b, err := redisstream.New(rdb, fastOptions())
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 300; i++ {
		c, err := runtimejobs.NewAppController(b, runtimejobs.WithMiddlewares(b.Middleware()))
		require.NoError(t, err)
		require.NoError(t, c.SubscribeToAllChannels(ctx, handlerFunc(func(context.Context, runtimejobs.RuntimeStopJobMessage) error {
			return nil
		})))
		c.UnsubscribeFromAllChannels(ctx)
	}
	// Every worker is gone: the broker says so.
	require.Eventually(t, func() bool {
		err := b.Health()
		return err != nil && strings.Contains(err.Error(), "no subscription")
	}, 10*time.Second, 10*time.Millisecond)
}

// Subscribe reads a group-less channel's last entry outside the broker's
// lock: while that read waits on a slow Redis, the broker goes on (Health
// and Middleware take the same lock).
func TestSubscribeDoesNotHoldTheBrokerWhileReadingRedis(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	admin := newClient(t, srv)
	b, err := redisstream.New(rdb, fastOptions())
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	require.NoError(t, admin.Do(context.Background(), "client", "pause", 1500, "all").Err())
	done := make(chan error, 1)
	go func() {
		_, err := b.Subscribe(context.Background(), results) // group-less: XREVRANGE
		done <- err
	}()
	for {
		start := time.Now()
		_ = b.Health()
		require.Less(t, time.Since(start), 500*time.Millisecond, "Health waited behind Subscribe's read")
		select {
		case err := <-done:
			require.NoError(t, err)
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// A request/reply caller subscribes to a group-less reply channel, takes
// entries that are not its reply without acknowledging them, and cancels.
// The entries it let fall do not stay in hand: the next callers are not
// starved once Prefetch of them have gone by.
func TestCancelledSubscriptionLeavesNothingInHand(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	const ch = "test:replies"
	opts := fastOptions()
	opts.Prefetch = 3
	b, err := redisstream.New(rdb, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = b.Close(ctx)
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 10; i++ {
		sub, err := b.Subscribe(ctx, ch)
		require.NoError(t, err)
		require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: ch, Values: []string{"payload", "{}"}}).Err())
		select {
		case m := <-sub.MessagesChannel():
			_ = m // not this caller's reply: dropped, neither acked nor nak'ed
		case <-time.After(10 * time.Second):
			t.Fatalf("caller %d got nothing: entries of cancelled subscriptions are still in hand", i)
		}
		sub.Cancel(ctx)
	}
}

// An entry sent to a subscription that is cancelled before its loop took
// it goes to another worker; Close then has nothing to wait for.
func TestEntryNotTakenByACancelledSubscriptionGoesToAnother(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	const ch = "test:work"
	opts := fastOptions()
	opts.Groups = map[string]string{ch: "g"}
	b, err := redisstream.New(rdb, opts)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first, err := b.Subscribe(ctx, ch)
	require.NoError(t, err)
	require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: ch, Values: []string{"payload", "{}"}}).Err())
	require.Eventually(t, func() bool { return len(first.MessagesChannel()) == 1 }, 10*time.Second, 5*time.Millisecond)
	second, err := b.Subscribe(ctx, ch)
	require.NoError(t, err)
	first.Cancel(ctx) // its loop never took the entry
	select {
	case m := <-second.MessagesChannel():
		m.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("the entry stayed with the cancelled subscription")
	}
	require.NoError(t, b.Close(ctx))
	n, err := rdb.XPending(ctx, ch, "g").Result()
	require.NoError(t, err)
	require.Zero(t, n.Count, "acknowledged by the second subscription")
	second.Cancel(ctx)
}
