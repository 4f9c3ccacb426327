package conformance_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

// subscriber answers both job channels through one function.
type subscriber struct {
	stop  func(ctx context.Context, msg runtimejobs.RuntimeStopJobMessage) error
	start func(ctx context.Context, msg runtimejobs.RuntimeStartJobMessage) error
}

func (s subscriber) ReceiveStopJobOperationReceived(ctx context.Context, msg runtimejobs.RuntimeStopJobMessage) error {
	return s.stop(ctx, msg)
}

func (s subscriber) ReceiveStartJobOperationReceived(ctx context.Context, msg runtimejobs.RuntimeStartJobMessage) error {
	return s.start(ctx, msg)
}

// examplesOf decodes the examples of the channel at addr into T.
func examplesOf[T any](t *testing.T, doc *api.Document, addr string) []T {
	t.Helper()
	ch, ok := doc.ChannelByAddress(addr)
	require.True(t, ok, addr)
	var out []T
	for _, ex := range ch.Message.Examples {
		var v T
		b, err := json.Marshal(ex.Payload)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(b, &v))
		out = append(out, v)
	}
	require.NotEmpty(t, out, addr)
	return out
}

// The generated UserController (playing Lobby) sends every example job over
// a real redis-server; the generated AppController (playing rtmanager)
// receives the same typed values and answers each with an example result,
// which reaches the UserController intact.
func TestExamplesRoundTripThroughGeneratedControllers(t *testing.T) {
	doc, err := api.Load()
	require.NoError(t, err)
	jobs := examplesOf[runtimejobs.RuntimeStopJobSchema](t, doc, runtimejobs.StopJobsChannelPath)
	starts := examplesOf[runtimejobs.RuntimeStartJobSchema](t, doc, runtimejobs.StartJobsChannelPath)
	answers := examplesOf[runtimejobs.RuntimeJobResultSchema](t, doc, runtimejobs.JobResultsChannelPath)
	total := len(jobs) + len(starts)

	srv := testredis.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	opts := redisstream.Options{Contract: doc, Block: 100 * time.Millisecond}
	appBroker, err := redisstream.New(rdb, opts)
	require.NoError(t, err)
	userBroker, err := redisstream.New(rdb, opts)
	require.NoError(t, err)
	defer func() { _ = appBroker.Close(context.Background()); _ = userBroker.Close(context.Background()) }()

	app, err := runtimejobs.NewAppController(appBroker, runtimejobs.WithMiddlewares(appBroker.Middleware()))
	require.NoError(t, err)
	defer app.Close(context.Background())
	received := make(chan runtimejobs.RuntimeStopJobSchema, len(jobs))
	receivedStarts := make(chan runtimejobs.RuntimeStartJobSchema, len(starts))
	var mu sync.Mutex
	n := 0
	answer := func(ctx context.Context) error {
		mu.Lock()
		out := runtimejobs.NewRuntimeJobResultMessage()
		out.Payload = answers[n%len(answers)]
		n++
		mu.Unlock()
		return app.SendAsSendJobResultOperation(ctx, out)
	}
	require.NoError(t, app.SubscribeToAllChannels(context.Background(), subscriber{
		stop: func(ctx context.Context, msg runtimejobs.RuntimeStopJobMessage) error {
			received <- msg.Payload
			return answer(ctx)
		},
		start: func(ctx context.Context, msg runtimejobs.RuntimeStartJobMessage) error {
			receivedStarts <- msg.Payload
			return answer(ctx)
		},
	}))

	user, err := runtimejobs.NewUserController(userBroker)
	require.NoError(t, err)
	defer user.Close(context.Background())
	results := make(chan runtimejobs.RuntimeJobResultSchema, total)
	require.NoError(t, user.SubscribeToSendJobResultOperation(context.Background(), func(_ context.Context, msg runtimejobs.RuntimeJobResultMessage) error {
		results <- msg.Payload
		return nil
	}))

	for _, j := range jobs {
		msg := runtimejobs.NewRuntimeStopJobMessage()
		msg.Payload = j
		require.NoError(t, user.SendToReceiveStopJobOperation(context.Background(), msg))
	}
	for _, j := range starts {
		msg := runtimejobs.NewRuntimeStartJobMessage()
		msg.Payload = j
		require.NoError(t, user.SendToReceiveStartJobOperation(context.Background(), msg))
	}
	for i, want := range jobs {
		select {
		case got := <-received:
			assert.Equal(t, want, got, "job example %d", i)
		case <-time.After(10 * time.Second):
			t.Fatalf("job example %d never reached the AppController", i)
		}
	}
	// Start and stop jobs are read by different loops: compare as sets.
	var gotStarts []runtimejobs.RuntimeStartJobSchema
	for i := range starts {
		select {
		case got := <-receivedStarts:
			gotStarts = append(gotStarts, got)
		case <-time.After(10 * time.Second):
			t.Fatalf("start job example %d never reached the AppController", i)
		}
	}
	assert.ElementsMatch(t, starts, gotStarts)
	// Results of different games may be written in any order.
	var want, got []runtimejobs.RuntimeJobResultSchema
	for i := 0; i < total; i++ {
		want = append(want, answers[i%len(answers)])
		select {
		case r := <-results:
			got = append(got, r)
		case <-time.After(10 * time.Second):
			t.Fatalf("result %d never reached the UserController", i)
		}
	}
	assert.ElementsMatch(t, want, got)
}
