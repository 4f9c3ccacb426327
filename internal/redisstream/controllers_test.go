package redisstream_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/lerenn/asyncapi-codegen/pkg/extensions"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

// A job written by hand, as redis-cli would, is consumed by the generated
// AppController and its result is plain fields; the generated UserController
// (playing Lobby) sends jobs and follows results over the same broker.
func TestUserAndAppControllersExchangeOverRedis(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	startApp(t, rdb, fastOptions(), 2, answer)

	handID := addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	waitLen(t, rdb, results, 1)
	got := streamEntries(t, rdb, results)[0].Values
	assert.Equal(t, handID, got["job_id"])
	assert.Equal(t, "g1", got["game_id"])
	assert.Equal(t, "success", got["outcome"])
	assert.Equal(t, "stop", got["operation"])
	_, err := strconv.ParseInt(got["completed_at_ms"].(string), 10, 64)
	require.NoError(t, err, "integers are decimal text")

	var userLog bytes.Buffer
	uopts := fastOptions()
	uopts.Logger = slog.New(slog.NewTextHandler(&userLog, nil))
	ub, err := redisstream.New(rdb, uopts)
	require.NoError(t, err)
	user, err := runtimejobs.NewUserController(ub)
	require.NoError(t, err)
	defer user.Close(context.Background())
	received := make(chan runtimejobs.RuntimeJobResultMessage, 1)
	require.NoError(t, user.SubscribeToSendJobResultOperation(context.Background(), func(_ context.Context, msg runtimejobs.RuntimeJobResultMessage) error {
		received <- msg
		return nil
	}))
	job := runtimejobs.NewRuntimeStopJobMessage()
	at := int64(1764160000000)
	job.Payload = runtimejobs.RuntimeStopJobSchema{GameId: "g2", Reason: "idle_timeout", RequestedAtMs: &at}
	require.NoError(t, user.SendToReceiveStopJobOperation(context.Background(), job))
	select {
	case msg := <-received:
		assert.Equal(t, "g2", msg.Payload.GameId)
		assert.Equal(t, "success", msg.Payload.Outcome)
	case <-time.After(10 * time.Second):
		t.Fatal("no result reached the user controller")
	}
	sent := streamEntries(t, rdb, jobs)[1].Values
	assert.Equal(t, map[string]any{"game_id": "g2", "reason": "idle_timeout", "requested_at_ms": "1764160000000"}, sent)
	assert.Zero(t, pendingCount(t, rdb))
	time.Sleep(100 * time.Millisecond)
	assert.NotContains(t, userLog.String(), "WARN", "a group-less subscription has nothing to acknowledge")
}

// A received message carries no header of the broker's own (the generated
// controller formats every header of every message): the entry's metadata
// reaches the handler through DeliveryFrom.
func TestStreamMetadataReachesHandlerThroughDeliveryNotHeaders(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.Consumer = "c-1"
	headers := make(chan map[string]string, 1)
	meta := make(chan string, 1)
	b, err := redisstream.New(rdb, opts)
	require.NoError(t, err)
	c, err := runtimejobs.NewAppController(b, runtimejobs.WithMiddlewares(b.Middleware(), headerSpy(headers)))
	require.NoError(t, err)
	require.NoError(t, c.SubscribeToAllChannels(context.Background(), handlerFunc(func(ctx context.Context, _ runtimejobs.RuntimeStopJobMessage) error {
		d, ok := redisstream.DeliveryFrom(ctx)
		if !ok {
			meta <- "no delivery"
			return nil
		}
		meta <- fmt.Sprintf("%s %d %s", d.ID(), d.Count(), d.Stream())
		return nil
	})))
	defer func() { _ = b.Close(context.Background()); c.Close(context.Background()) }()

	id := addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	select {
	case h := <-headers:
		assert.Empty(t, h, "no broker headers on an ordinary entry")
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}
	select {
	case m := <-meta:
		assert.Equal(t, id+" 1 "+jobs, m)
	case <-time.After(10 * time.Second):
		t.Fatal("the handler did not run")
	}
}

// headerSpy is a middleware that reports the headers of received messages.
func headerSpy(out chan<- map[string]string) extensions.Middleware {
	return func(ctx context.Context, msg *extensions.BrokerMessage, next extensions.NextMiddleware) error {
		if ctx.Value(extensions.ContextKeyIsDirection) == "reception" {
			h := map[string]string{}
			for k, v := range msg.Headers {
				h[k] = string(v)
			}
			out <- h
		}
		return next(ctx)
	}
}

// Two streams can hold an entry with the same id; each handler still gets
// the delivery of its own stream.
func TestMiddlewareTellsEntriesOfTheSameIDApart(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	b, err := redisstream.New(rdb, fastOptions())
	require.NoError(t, err)
	defer func() { _ = b.Close(context.Background()) }()
	seen := make(chan string, 2)
	streamOf := func(ctx context.Context) string {
		if d, ok := redisstream.DeliveryFrom(ctx); ok {
			return d.Stream() + " " + d.ID()
		}
		return "no delivery"
	}
	app, err := runtimejobs.NewAppController(b, runtimejobs.WithMiddlewares(b.Middleware()))
	require.NoError(t, err)
	defer app.Close(context.Background())
	require.NoError(t, app.SubscribeToAllChannels(context.Background(), handlerFunc(func(ctx context.Context, _ runtimejobs.RuntimeStopJobMessage) error {
		seen <- streamOf(ctx)
		return nil
	})))
	user, err := runtimejobs.NewUserController(b, runtimejobs.WithMiddlewares(b.Middleware()))
	require.NoError(t, err)
	defer user.Close(context.Background())
	require.NoError(t, user.SubscribeToSendJobResultOperation(context.Background(), func(ctx context.Context, _ runtimejobs.RuntimeJobResultMessage) error {
		seen <- streamOf(ctx)
		return nil
	}))
	const id = "9999999999999-1"
	ctx := context.Background()
	require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: results, ID: id, Values: []string{
		"job_id", "1-1", "game_id", "g1", "operation", "stop", "outcome", "success", "completed_at_ms", "1"}}).Err())
	require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: jobs, ID: id, Values: []string{"game_id", "g1", "reason", "game_finished"}}).Err())
	var got []string
	for len(got) < 2 {
		select {
		case s := <-seen:
			got = append(got, s)
		case <-time.After(10 * time.Second):
			t.Fatalf("handlers saw only %v", got)
		}
	}
	assert.ElementsMatch(t, []string{jobs + " " + id, results + " " + id}, got)
}
