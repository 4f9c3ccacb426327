package redisstream_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/testredis"
)

// The entries a process holds are bounded in bytes, not only in number:
// with 1 MiB entries and a 4 MiB budget it never holds more than the
// budget plus one entry, however deep the prefetch.
func TestBytesInHandAreBounded(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	const n, size = 20, 1 << 20
	pad := strings.Repeat("x", size)
	for i := 0; i < n; i++ {
		addJob(t, rdb, "game_id", fmt.Sprintf("g%d", i), "reason", "game_finished", "pad", pad)
	}
	opts := fastOptions()
	opts.Consumer = "app"
	opts.MaxFieldSize = 2 * size // the entries are valid jobs
	opts.MaxBytesInHand = 4 * size
	release := make(chan struct{})
	startApp(t, rdb, opts, 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		<-release
		return answer(ctx, c, msg)
	})
	held := func() int {
		p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: jobs, Group: group, Consumer: "app", Start: "-", End: "+", Count: 2 * n}).Result()
		if err != nil {
			return -1 // no group yet
		}
		return len(p)
	}
	// The budget is full at 4 entries; one read may bring one more.
	require.Eventually(t, func() bool { return held() >= 4 }, 20*time.Second, 10*time.Millisecond)
	for answered := 0; answered < n; answered++ {
		require.LessOrEqual(t, held(), 5, "entries in hand after %d answers", answered)
		release <- struct{}{}
		waitLen(t, rdb, results, int64(answered+1))
	}
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 0 }, 10*time.Second, 10*time.Millisecond)
}
