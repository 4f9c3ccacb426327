package redisstream_test

import (
	"context"
	"strings"
	"testing"
	"time"

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
