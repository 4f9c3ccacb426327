package redisstream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	assert.NoError(t, err, "integers are decimal text")

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

func TestStreamMetadataReachesHandlerAsHeaders(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.Consumer = "c-1"
	headers := make(chan map[string]string, 1)
	b, err := redisstream.New(rdb, opts)
	require.NoError(t, err)
	c, err := runtimejobs.NewAppController(b, runtimejobs.WithMiddlewares(b.Middleware(), headerSpy(headers)))
	require.NoError(t, err)
	require.NoError(t, c.SubscribeToAllChannels(context.Background(), handlerFunc(func(context.Context, runtimejobs.RuntimeStopJobMessage) error { return nil })))
	defer func() { _ = b.Close(context.Background()); c.Close(context.Background()) }()

	id := addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	select {
	case h := <-headers:
		assert.Equal(t, id, h[redisstream.HeaderEntryID])
		assert.Equal(t, "1", h[redisstream.HeaderDeliveryCount])
		assert.Len(t, h, 2, "only the entry's metadata: %v", h)
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
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

func TestNakIsRedeliveredWithBackoff(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	var calls atomic.Int32
	counts := make(chan int64, 4)
	startApp(t, rdb, fastOptions(), 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		counts <- d.Count()
		if calls.Add(1) == 1 {
			// Publishes, then fails: nothing of this attempt may be written.
			require.NoError(t, answer(ctx, c, msg))
			return errors.New("transient")
		}
		return answer(ctx, c, msg)
	})
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	waitLen(t, rdb, results, 1)
	time.Sleep(200 * time.Millisecond)
	assert.Len(t, streamEntries(t, rdb, results), 1, "the failed attempt's publication was dropped")
	assert.Equal(t, int64(1), <-counts)
	assert.Equal(t, int64(2), <-counts)
	assert.Zero(t, pendingCount(t, rdb))
}

func TestMaxDeliveriesDeadLettersAndAcks(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.MaxDeliveries = 3
	var calls atomic.Int32
	startApp(t, rdb, opts, 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		calls.Add(1)
		require.NoError(t, answer(ctx, c, msg))
		return errors.New("runtime unreachable")
	})
	id := addJob(t, rdb, "game_id", "g1", "reason", "game_finished", "dead_reason", "spoof")
	waitLen(t, rdb, dead, 1)
	dl := streamEntries(t, rdb, dead)[0].Values
	assert.Equal(t, "max_deliveries", dl["dead_reason"])
	assert.Equal(t, id, dl["original_id"])
	assert.Equal(t, "3", dl["delivery_count"])
	assert.Contains(t, dl["dead_error"], "runtime unreachable")
	assert.Equal(t, "g1", dl["game_id"], "original fields are kept")
	assert.Equal(t, "spoof", dl["original.dead_reason"], "a colliding original field is renamed")
	assert.Equal(t, int32(3), calls.Load())
	assert.Zero(t, pendingCount(t, rdb))
	assert.Empty(t, streamEntries(t, rdb, results), "a handler that failed publishes nothing")
}

func TestUndecodableEntryIsDeadLetteredAndCanBeAnswered(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	seen := make(chan string, 1)
	startApp(t, rdb, fastOptions(), 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		seen <- d.Dead() + "|" + string(msg.Payload.GameId)
		return answer(ctx, c, msg)
	})
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished", "requested_at_ms", "yesterday")
	waitLen(t, rdb, dead, 1)
	assert.Equal(t, "undecodable|g1", <-seen, "the handler sees what could be read and why it is dead")
	dl := streamEntries(t, rdb, dead)[0].Values
	assert.Equal(t, "undecodable", dl["dead_reason"])
	assert.Contains(t, dl["dead_error"], "requested_at_ms")
	assert.Equal(t, "yesterday", dl["requested_at_ms"])
	assert.Len(t, streamEntries(t, rdb, results), 1, "answer and dead letter in one step")
	assert.Zero(t, pendingCount(t, rdb))
}

func TestUndecodableEntryIsDeadLetteredEvenIfHandlerFails(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	startApp(t, rdb, fastOptions(), 1, func(context.Context, *runtimejobs.AppController, runtimejobs.RuntimeStopJobMessage) error {
		return errors.New("cannot handle")
	})
	addJob(t, rdb, "game_id", "g\xff", "reason", "game_finished")
	waitLen(t, rdb, dead, 1)
	assert.Equal(t, "g\xff", streamEntries(t, rdb, dead)[0].Values["game_id"], "bytes are kept verbatim")
	assert.Zero(t, pendingCount(t, rdb))
}

func TestHandlerCanDeadLetterAnInvalidJob(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	startApp(t, rdb, fastOptions(), 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		d.DeadLetter(redisstream.DeadInvalid, "reason: unknown")
		return answer(ctx, c, msg)
	})
	addJob(t, rdb, "game_id", "g1", "reason", "vacation")
	waitLen(t, rdb, dead, 1)
	assert.Equal(t, "invalid", streamEntries(t, rdb, dead)[0].Values["dead_reason"])
	assert.Len(t, streamEntries(t, rdb, results), 1)
}

// Entries a crashed consumer read and never acknowledged are claimed by a
// live consumer of the group once idle for ClaimIdle.
func TestClaimsEntriesOfDeadConsumer(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, jobs, group, "0").Err())
	for i := 0; i < 5; i++ {
		addJob(t, rdb, "game_id", fmt.Sprintf("g%d", i), "reason", "game_finished")
	}
	// A consumer reads and dies.
	_, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "crashed", Streams: []string{jobs, ">"}, Count: 10}).Result()
	require.NoError(t, err)
	require.Equal(t, int64(5), pendingCount(t, rdb))

	start := time.Now()
	startApp(t, rdb, fastOptions(), 2, answer)
	waitLen(t, rdb, results, 5)
	assert.GreaterOrEqual(t, time.Since(start), 400*time.Millisecond, "claimed only after ClaimIdle")
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 0 }, 5*time.Second, 10*time.Millisecond)
	assert.Len(t, streamEntries(t, rdb, results), 5)
}

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

// Entries with one partition key never run concurrently and run in stream
// order, while different keys run in parallel.
func TestPartitionKeyOrderUnderConcurrency(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	const keys, perKey = 16, 30
	var mu sync.Mutex
	active := map[string]bool{}
	seen := map[string][]int64{}
	var parallel, maxParallel atomic.Int32
	startApp(t, rdb, fastOptions(), 8, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		g := string(msg.Payload.GameId)
		mu.Lock()
		if active[g] {
			mu.Unlock()
			t.Errorf("game %s handled concurrently", g)
			return nil
		}
		active[g] = true
		seen[g] = append(seen[g], *msg.Payload.RequestedAtMs)
		mu.Unlock()
		n := parallel.Add(1)
		for {
			m := maxParallel.Load()
			if n <= m || maxParallel.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Millisecond)
		parallel.Add(-1)
		mu.Lock()
		active[g] = false
		mu.Unlock()
		return answer(ctx, c, msg)
	})
	pipe := rdb.Pipeline()
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: jobs, Values: []string{"game_id", fmt.Sprintf("g%d", k), "reason", "game_finished", "requested_at_ms", strconv.Itoa(i)}})
		}
	}
	_, err := pipe.Exec(context.Background())
	require.NoError(t, err)
	waitLen(t, rdb, results, keys*perKey)
	mu.Lock()
	defer mu.Unlock()
	for k := 0; k < keys; k++ {
		got := seen[fmt.Sprintf("g%d", k)]
		require.Len(t, got, perKey)
		for i, v := range got {
			require.Equal(t, int64(i), v, "game g%d out of order", k)
		}
	}
	assert.Greater(t, maxParallel.Load(), int32(1), "different keys ran in parallel")
}

// A handler that publishes then fails leaves no result; one that succeeds
// leaves its result and its acknowledgement together.
func TestPublishAndAckAreOneStep(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.MaxDeliveries = 2
	startApp(t, rdb, opts, 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		require.NoError(t, answer(ctx, c, msg))
		if msg.Payload.GameId == "bad" {
			return errors.New("fail after publishing")
		}
		return nil
	})
	addJob(t, rdb, "game_id", "bad", "reason", "game_finished")
	addJob(t, rdb, "game_id", "good", "reason", "game_finished")
	waitLen(t, rdb, dead, 1)
	waitLen(t, rdb, results, 1)
	time.Sleep(200 * time.Millisecond)
	res := streamEntries(t, rdb, results)
	require.Len(t, res, 1)
	assert.Equal(t, "good", res[0].Values["game_id"])
	assert.Zero(t, pendingCount(t, rdb))
}

// If another consumer claimed the entry while this one handled it, this
// one's publications are dropped: each entry is answered once.
func TestCommitRequiresOwnership(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	release := make(chan struct{})
	startApp(t, rdb, fastOptions(), 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		<-release
		return answer(ctx, c, msg)
	})
	id := addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 1 }, 5*time.Second, 10*time.Millisecond)
	// Someone else takes the entry over and acknowledges it.
	require.NoError(t, rdb.XClaim(ctx, &redis.XClaimArgs{Stream: jobs, Group: group, Consumer: "other", Messages: []string{id}}).Err())
	require.NoError(t, rdb.XAck(ctx, jobs, group, id).Err())
	close(release)
	time.Sleep(300 * time.Millisecond)
	assert.Empty(t, streamEntries(t, rdb, results))
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
	time.Sleep(100 * time.Millisecond) // let it block in XREADGROUP
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a.ctrls[0].UnsubscribeFromAllChannels(ctx)
	assert.Less(t, time.Since(start), time.Second)
	start = time.Now()
	require.NoError(t, a.broker.Close(ctx))
	assert.Less(t, time.Since(start), 6*time.Second, "close is bounded by one Block")
}

// An entry handled for longer than ClaimIdle is kept fresh, so a live
// consumer's work is not claimed by another one.
func TestLongHandlingIsNotClaimedByOthers(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	var calls atomic.Int32
	slow := func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		calls.Add(1)
		time.Sleep(1500 * time.Millisecond) // three times ClaimIdle
		return answer(ctx, c, msg)
	}
	opts := fastOptions()
	opts.ClaimIdle, opts.ClaimInterval = 500*time.Millisecond, 100*time.Millisecond
	startApp(t, rdb, opts, 1, slow)
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	require.Eventually(t, func() bool { return calls.Load() == 1 }, 5*time.Second, 10*time.Millisecond)
	startApp(t, rdb, opts, 1, slow) // another consumer, eager to claim
	waitLen(t, rdb, results, 1)
	time.Sleep(700 * time.Millisecond)
	assert.Equal(t, int32(1), calls.Load(), "handled once")
	assert.Len(t, streamEntries(t, rdb, results), 1)
}

// Consumers that are gone and own nothing pending are removed after
// ConsumerIdle; one that still owns entries is kept.
func TestIdleConsumersWithNothingPendingAreRemoved(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, jobs, group, "0").Err())
	require.NoError(t, rdb.XGroupCreateConsumer(ctx, jobs, group, "ghost").Err())
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	_, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "holder", Streams: []string{jobs, ">"}, Count: 1}).Result()
	require.NoError(t, err)

	opts := fastOptions()
	opts.ConsumerIdle = 300 * time.Millisecond
	opts.ClaimIdle = time.Hour // keep "holder"'s entry where it is
	opts.ClaimInterval = 50 * time.Millisecond
	opts.Consumer = "live"
	startApp(t, rdb, opts, 1, answer)
	names := func() map[string]bool {
		cs, err := rdb.XInfoConsumers(ctx, jobs, group).Result()
		require.NoError(t, err)
		out := map[string]bool{}
		for _, c := range cs {
			out[c.Name] = true
		}
		return out
	}
	require.Eventually(t, func() bool { return !names()["ghost"] }, 5*time.Second, 20*time.Millisecond, "ghost consumer never removed")
	got := names()
	assert.True(t, got["holder"], "a consumer owning pending entries is kept")
}

// Entries a dead consumer left are claimed ahead of new entries, even while
// a backlog keeps the process's prefetch full.
func TestClaimsGoAheadOfABacklog(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, jobs, group, "0").Err())
	for i := 0; i < 3; i++ {
		addJob(t, rdb, "game_id", fmt.Sprintf("orphan%d", i), "reason", "game_finished")
	}
	_, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "crashed", Streams: []string{jobs, ">"}, Count: 3}).Result()
	require.NoError(t, err)
	pipe := rdb.Pipeline()
	for i := 0; i < 400; i++ {
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: jobs, Values: []string{"game_id", fmt.Sprintf("new%d", i), "reason", "game_finished"}})
	}
	_, err = pipe.Exec(ctx)
	require.NoError(t, err)

	var mu sync.Mutex
	var order []string
	opts := fastOptions()
	opts.ClaimIdle, opts.ClaimInterval = 300*time.Millisecond, 50*time.Millisecond
	opts.ReadCount, opts.Prefetch = 4, 4
	startApp(t, rdb, opts, 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		mu.Lock()
		order = append(order, string(msg.Payload.GameId))
		mu.Unlock()
		time.Sleep(5 * time.Millisecond) // the backlog takes about 2 s
		return answer(ctx, c, msg)
	})
	waitLen(t, rdb, results, 403)
	mu.Lock()
	defer mu.Unlock()
	last := 0
	for i, g := range order {
		if strings.HasPrefix(g, "orphan") {
			last = i
		}
	}
	assert.Less(t, last, 200, "orphans handled at position %d of %d: claims waited for the backlog", last, len(order))
}

// An older entry claimed from a dead consumer goes before a newer entry of
// the same key that waits for its retry: the newer one is often waiting for
// exactly that older one (a stop that the dead consumer began).
func TestClaimedOlderEntryPreemptsRetryingNewerOne(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, jobs, group, "0").Err())
	first := addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	_, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "crashed", Streams: []string{jobs, ">"}, Count: 1}).Result()
	require.NoError(t, err)
	second := addJob(t, rdb, "game_id", "g1", "reason", "admin_request")

	var firstDone atomic.Bool
	opts := fastOptions()
	opts.ClaimIdle, opts.ClaimInterval = 500*time.Millisecond, 50*time.Millisecond
	opts.RetryBackoff, opts.MaxRetryBackoff, opts.MaxDeliveries = 300*time.Millisecond, 2*time.Second, 3
	startApp(t, rdb, opts, 2, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		if d.ID() == first {
			firstDone.Store(true)
		} else if !firstDone.Load() {
			return errors.New("busy: game g1 is being stopped by another job")
		}
		return answer(ctx, c, msg)
	})
	waitLen(t, rdb, results, 2)
	time.Sleep(200 * time.Millisecond)
	res := streamEntries(t, rdb, results)
	require.Len(t, res, 2)
	assert.Equal(t, first, res[0].Values["job_id"])
	assert.Equal(t, second, res[1].Values["job_id"])
	n, _ := rdb.XLen(ctx, dead).Result()
	assert.Zero(t, n, "the newer job did not run out of deliveries")
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

// A handler that fails because Redis went away is not charged a delivery:
// the job waits, dispatch pauses while Redis is away, and the job goes on
// soon after Redis is back, however long the outage.
func TestRedisOutageChargesNoDelivery(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{AppendOnly: true})
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.MaxDeliveries = 2
	var calls atomic.Int32
	counts := make(chan int64, 100)
	inHandler := make(chan struct{})
	redisDown := make(chan struct{})
	startApp(t, rdb, opts, 2, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		counts <- d.Count()
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
	close(counts)
	var seen []int64
	for c := range counts {
		seen = append(seen, c)
	}
	assert.Equal(t, int64(1), seen[len(seen)-1], "no delivery charged: %v", seen)
	assert.LessOrEqual(t, len(seen), 3, "no busy loop while Redis is away: %v", seen)
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
