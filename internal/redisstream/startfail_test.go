package redisstream_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

// readErrors counts the read errors the broker reports.
type readErrors struct {
	n atomic.Int64
}

func (*readErrors) Received(string, int)        {}
func (*readErrors) Redelivered(string)          {}
func (*readErrors) Committed(string, int)       {}
func (*readErrors) DeadLettered(string, string) {}
func (o *readErrors) ReadError(string, error)   { o.n.Add(1) }

// closeWithoutGroup subscribes while the group cannot be created, then
// checks that Close returns at once and the failing start-up did not spin.
func closeWithoutGroup(t *testing.T, rdb redis.UniversalClient, health string) {
	t.Helper()
	obs := &readErrors{}
	opts := fastOptions()
	opts.Observer = obs
	a := startApp(t, rdb, opts, 2, answer)
	require.Eventually(t, func() bool {
		err := a.broker.Health()
		return err != nil && strings.Contains(err.Error(), health)
	}, 10*time.Second, 10*time.Millisecond, "Health names the problem")
	// Retries back off (ReconnectMax 200ms here): a second of them is a
	// handful (a measuring window, not a wait for a condition).
	before := obs.n.Load()
	time.Sleep(time.Second)
	assert.Less(t, obs.n.Load()-before, int64(30), "create-group retries back off")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	require.NoError(t, a.broker.Close(ctx), "nothing was in flight: Close returns at once")
	assert.Less(t, time.Since(start), 3*time.Second)
	// After Close, nothing retries any more.
	after := obs.n.Load()
	time.Sleep(300 * time.Millisecond)
	assert.LessOrEqual(t, obs.n.Load()-after, int64(1), "no retry after Close")
}

// A stream key of the wrong type: the group can never be created. Health
// says which key and what it holds; Close does not spin until its deadline.
func TestWrongTypeStreamKeyIsReportedAndCloseReturns(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	require.NoError(t, rdb.Set(context.Background(), jobs, "x", 0).Err())
	closeWithoutGroup(t, rdb, "key "+jobs+" holds a string, not a stream")
}

// Redis down at start-up: same.
func TestRedisDownAtStartCloseReturns(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	require.NoError(t, srv.Stop())
	closeWithoutGroup(t, rdb, "create consumer group")
}

var _ redisstream.Observer = (*readErrors)(nil)
