package redisstream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

const (
	jobs    = runtimejobs.StopJobsChannelPath
	results = runtimejobs.JobResultsChannelPath
	dead    = runtimejobs.StopJobsDeadChannelPath
	group   = "rtmanager"
)

// handlerFunc adapts a function to the generated AppSubscriber.
type handlerFunc func(ctx context.Context, msg runtimejobs.RuntimeStopJobMessage) error

func (f handlerFunc) ReceiveStopJobOperationReceived(ctx context.Context, msg runtimejobs.RuntimeStopJobMessage) error {
	return f(ctx, msg)
}

// ReceiveStartJobOperationReceived: these tests write stop jobs only.
func (f handlerFunc) ReceiveStartJobOperationReceived(context.Context, runtimejobs.RuntimeStartJobMessage) error {
	return errors.New("unexpected start job")
}

func fastOptions() redisstream.Options {
	return redisstream.Options{
		Block:           100 * time.Millisecond,
		RetryBackoff:    20 * time.Millisecond,
		MaxRetryBackoff: 100 * time.Millisecond,
		ClaimIdle:       500 * time.Millisecond,
		ClaimInterval:   100 * time.Millisecond,
		ReconnectMin:    20 * time.Millisecond,
		ReconnectMax:    200 * time.Millisecond,
	}
}

type app struct {
	broker *redisstream.Broker
	ctrls  []*runtimejobs.AppController
}

// startApp runs `workers` generated AppControllers on one broker.
func startApp(t *testing.T, rdb redis.UniversalClient, opts redisstream.Options, workers int, h func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error) *app {
	t.Helper()
	b, err := redisstream.New(rdb, opts)
	require.NoError(t, err)
	a := &app{broker: b}
	for i := 0; i < workers; i++ {
		c, err := runtimejobs.NewAppController(b, runtimejobs.WithMiddlewares(b.Middleware()))
		require.NoError(t, err)
		require.NoError(t, c.SubscribeToAllChannels(context.Background(), handlerFunc(func(ctx context.Context, msg runtimejobs.RuntimeStopJobMessage) error {
			return h(ctx, c, msg)
		})))
		a.ctrls = append(a.ctrls, c)
	}
	t.Cleanup(func() { a.stop(t) })
	return a
}

func (a *app) stop(t *testing.T) {
	if a.broker == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = a.broker.Close(ctx)
	for _, c := range a.ctrls {
		c.Close(ctx)
	}
	a.broker = nil
}

// answer publishes the result of a job through the generated sender.
func answer(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
	d, ok := redisstream.DeliveryFrom(ctx)
	if !ok {
		return errors.New("no delivery in context")
	}
	res := runtimejobs.NewRuntimeJobResultMessage()
	res.Payload = runtimejobs.RuntimeJobResultSchema{
		JobId: d.ID(), GameId: string(msg.Payload.GameId), Operation: "stop", Outcome: "success",
		CompletedAtMs: time.Now().UnixMilli(),
	}
	return c.SendAsSendJobResultOperation(ctx, res)
}

func addJob(t testing.TB, rdb redis.UniversalClient, values ...string) string {
	t.Helper()
	id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: jobs, Values: values}).Result()
	require.NoError(t, err)
	return id
}

func streamEntries(t testing.TB, rdb redis.UniversalClient, stream string) []redis.XMessage {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), stream, "-", "+").Result()
	require.NoError(t, err)
	return msgs
}

func waitLen(t testing.TB, rdb redis.UniversalClient, stream string, n int64) {
	t.Helper()
	require.Eventually(t, func() bool {
		l, _ := rdb.XLen(context.Background(), stream).Result()
		return l >= n
	}, 20*time.Second, 10*time.Millisecond, "stream %s never reached %d entries", stream, n)
}

// pendingCount is the group's pending entries, -1 while there is no group.
func pendingCount(t testing.TB, rdb redis.UniversalClient) int64 {
	t.Helper()
	p, err := rdb.XPending(context.Background(), jobs, group).Result()
	if err != nil {
		return -1
	}
	return p.Count
}

func newClient(t testing.TB, srv *testredis.Server) *redis.Client {
	c := srv.Client()
	t.Cleanup(func() { _ = c.Close() })
	return c
}
