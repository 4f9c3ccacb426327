package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
)

// backlog appends n stop jobs and delivers k of them to consumer.
func backlog(t *testing.T, rdb *redis.Client, n, k int, consumer string) {
	t.Helper()
	ctx := context.Background()
	p := rdb.Pipeline()
	for i := 0; i < n; i++ {
		p.XAdd(ctx, &redis.XAddArgs{Stream: runtimejobs.StopJobsChannelPath, Values: []any{"game_id", fmt.Sprintf("g-%d", i), "reason", "admin_request"}})
	}
	_, err := p.Exec(ctx)
	require.NoError(t, err)
	require.NoError(t, rdb.XGroupCreate(ctx, runtimejobs.StopJobsChannelPath, "rtmanager", "0").Err())
	if k > 0 {
		_, err = rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "rtmanager", Consumer: consumer,
			Streams: []string{runtimejobs.StopJobsChannelPath, ">"}, Count: int64(k)}).Result()
		require.NoError(t, err)
	}
}

func TestOverviewShowsLengthLagPendingAndConsumers(t *testing.T) {
	f := newFixture(t, Options{Ready: func(context.Context) error { return errors.New("redis unreachable: <boom>") }})
	backlog(t, f.rdb, 7, 3, "worker-a")
	addDead(t, f.rdb, "g-1", "bad")

	code, body := f.get("/")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `<td class="length">7</td>`)
	assert.Contains(t, body, `<td class="lag">4</td>`)
	assert.Contains(t, body, `<td class="pending">3</td>`)
	assert.Contains(t, body, `<td>worker-a</td><td>3</td>`)
	assert.Contains(t, body, `>1</a> on <code>runtime:stop_jobs:dead</code>`)
	// The start stream has no entries: shown, not failed.
	assert.Contains(t, body, `id="stream-startJobs"`)
	// The readiness reason, escaped.
	assert.Contains(t, body, "not ready: redis unreachable: &lt;boom&gt;")
}

func TestUnknownPathIs404AndMetricsPathsAreNotTheConsoles(t *testing.T) {
	f := newFixture(t, Options{})
	code, _ := f.get("/nope")
	assert.Equal(t, http.StatusNotFound, code)
	// /metrics, /healthz and /readyz stay rtmanager's (its mux matches
	// them first); the console does not answer them.
	code, _ = f.get("/metrics")
	assert.Equal(t, http.StatusNotFound, code)
}
