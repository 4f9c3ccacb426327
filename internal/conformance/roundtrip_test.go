package conformance_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

type appFunc func(ctx context.Context, msg runtimejobs.RuntimeStopJobMessage) error

func (f appFunc) ReceiveStopJobOperationReceived(ctx context.Context, msg runtimejobs.RuntimeStopJobMessage) error {
	return f(ctx, msg)
}

// The generated UserController (playing Lobby) sends every example job over
// a real redis-server; the generated AppController (playing rtmanager)
// receives the same typed values and answers each with an example result,
// which reaches the UserController intact.
func TestExamplesRoundTripThroughGeneratedControllers(t *testing.T) {
	doc, err := api.Load()
	require.NoError(t, err)
	jobsCh, _ := doc.ChannelByAddress(runtimejobs.StopJobsChannelPath)
	resultsCh, _ := doc.ChannelByAddress(runtimejobs.JobResultsChannelPath)
	var jobs []runtimejobs.RuntimeStopJobSchema
	for _, ex := range jobsCh.Message.Examples {
		var j runtimejobs.RuntimeStopJobSchema
		b, _ := json.Marshal(ex.Payload)
		require.NoError(t, json.Unmarshal(b, &j))
		jobs = append(jobs, j)
	}
	var answers []runtimejobs.RuntimeJobResultSchema
	for _, ex := range resultsCh.Message.Examples {
		var r runtimejobs.RuntimeJobResultSchema
		b, _ := json.Marshal(ex.Payload)
		require.NoError(t, json.Unmarshal(b, &r))
		answers = append(answers, r)
	}
	require.NotEmpty(t, jobs)
	require.NotEmpty(t, answers)

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
	n := 0
	require.NoError(t, app.SubscribeToAllChannels(context.Background(), appFunc(func(ctx context.Context, msg runtimejobs.RuntimeStopJobMessage) error {
		received <- msg.Payload
		out := runtimejobs.NewRuntimeJobResultMessage()
		out.Payload = answers[n%len(answers)]
		n++
		return app.SendAsSendJobResultOperation(ctx, out)
	})))

	user, err := runtimejobs.NewUserController(userBroker)
	require.NoError(t, err)
	defer user.Close(context.Background())
	results := make(chan runtimejobs.RuntimeJobResultSchema, len(jobs))
	require.NoError(t, user.SubscribeToSendJobResultOperation(context.Background(), func(_ context.Context, msg runtimejobs.RuntimeJobResultMessage) error {
		results <- msg.Payload
		return nil
	}))

	for _, j := range jobs {
		msg := runtimejobs.NewRuntimeStopJobMessage()
		msg.Payload = j
		require.NoError(t, user.SendToReceiveStopJobOperation(context.Background(), msg))
	}
	for i, want := range jobs {
		select {
		case got := <-received:
			assert.Equal(t, want, got, "job example %d", i)
		case <-time.After(10 * time.Second):
			t.Fatalf("job example %d never reached the AppController", i)
		}
	}
	// Results of different games may be written in any order.
	var want, got []runtimejobs.RuntimeJobResultSchema
	for i := range jobs {
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
