package redisstream_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/testredis"
)

func TestCloseWaitsForInFlightAndLeavesTheRestPending(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	a := startApp(t, rdb, fastOptions(), 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		started <- struct{}{}
		<-release
		return answer(ctx, c, msg)
	})
	for i := 0; i < 3; i++ {
		addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	}
	<-started
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- a.broker.Close(ctx)
	}()
	time.Sleep(100 * time.Millisecond)
	close(release)
	require.NoError(t, <-done)
	assert.Len(t, streamEntries(t, rdb, results), 1, "the in-flight job finished, no other started")

	// The rest is left for the next consumer, which answers each job once.
	startApp(t, rdb, fastOptions(), 1, answer)
	waitLen(t, rdb, results, 3)
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 0 }, 10*time.Second, 10*time.Millisecond)
	seen := map[string]int{}
	for _, m := range streamEntries(t, rdb, results) {
		seen[m.Values["job_id"].(string)]++
	}
	assert.Len(t, seen, 3)
	for id, n := range seen {
		assert.Equal(t, 1, n, id)
	}
}

func TestUnsubscribeReturnsPromptly(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.Block = 5 * time.Second
	a := startApp(t, rdb, opts, 1, answer)
	// Wait until the reader is blocked in XREADGROUP (flag b), so closing
	// has to cut a Block short.
	require.Eventually(t, func() bool {
		list, err := rdb.ClientList(context.Background()).Result()
		return err == nil && strings.Contains(list, "flags=b ") && strings.Contains(list, "cmd=xreadgroup")
	}, 10*time.Second, 10*time.Millisecond)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.ctrls[0].UnsubscribeFromAllChannels(ctx)
	// Well under one Block (5 s), with room for -race on a busy machine.
	assert.Less(t, time.Since(start), 3*time.Second)
	start = time.Now()
	require.NoError(t, a.broker.Close(ctx))
	assert.Less(t, time.Since(start), 6*time.Second, "close is bounded by one Block")
}
