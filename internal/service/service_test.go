package service_test

import (
	"bytes"
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lerenn/asyncapi-codegen/pkg/extensions"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/service"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// gateStopper is the orchestrator port: each stop blocks until release is
// closed, so a test can see how many run at once.
type gateStopper struct {
	release  chan struct{}
	inFlight atomic.Int32
	peak     atomic.Int32
	started  atomic.Int32
}

func newGate() *gateStopper { return &gateStopper{release: make(chan struct{})} }

// Begin blocks in the worker, as a slow begin step would, and answers.
func (s *gateStopper) Begin(ctx context.Context, in stopruntime.Input) (stopruntime.Begun, error) {
	n := s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	s.started.Add(1)
	for {
		p := s.peak.Load()
		if n <= p || s.peak.CompareAndSwap(p, n) {
			break
		}
	}
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return answered{stopruntime.Result{
		Outcome: stopruntime.OutcomeSuccess,
		Record:  stopruntime.Record{GameID: in.GameID, ContainerID: "c-" + in.GameID},
	}}, nil
}

// answered is a stop the begin step answered.
type answered struct{ res stopruntime.Result }

func (a answered) Answer() (stopruntime.Result, bool)                 { return a.res, true }
func (a answered) Finish(context.Context) (stopruntime.Result, error) { return a.res, nil }

func startService(t *testing.T, rdb *redis.Client, opts service.Options) *service.Service {
	t.Helper()
	opts.Broker = redisstream.Options{Block: 50 * time.Millisecond}
	s, err := service.Start(context.Background(), rdb, opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return s
}

func addJob(t *testing.T, rdb *redis.Client, game string) string {
	t.Helper()
	id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{
		Stream: runtimejobs.StopJobsChannelPath, Values: []string{"game_id", game, "reason", "game_finished"},
	}).Result()
	require.NoError(t, err)
	return id
}

func TestStartRequiresAStopper(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	_, err := service.Start(context.Background(), rdb, service.Options{})
	require.ErrorContains(t, err, "nil stopper")
}

// Workers controllers each handle one job at a time: with 3 workers and 5
// blocked stops, exactly 3 run at once; released, every job is answered.
func TestWorkersBoundTheJobsInFlightAndEveryJobIsAnswered(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	stopper := newGate()
	startService(t, rdb, service.Options{Stopper: stopper, Workers: 3})

	ids := map[string]string{}
	for _, g := range []string{"g1", "g2", "g3", "g4", "g5"} {
		ids[addJob(t, rdb, g)] = g
	}
	require.Eventually(t, func() bool { return stopper.inFlight.Load() == 3 }, 20*time.Second, 5*time.Millisecond)
	close(stopper.release)

	var msgs []redis.XMessage
	require.Eventually(t, func() bool {
		msgs, _ = rdb.XRange(context.Background(), runtimejobs.JobResultsChannelPath, "-", "+").Result()
		return len(msgs) >= len(ids)
	}, 20*time.Second, 10*time.Millisecond)
	require.Len(t, msgs, len(ids))
	assert.Equal(t, int32(3), stopper.peak.Load(), "never more stops at once than workers")
	for _, m := range msgs {
		job, _ := m.Values["job_id"].(string)
		require.Contains(t, ids, job)
		assert.Equal(t, ids[job], m.Values["game_id"])
		assert.Equal(t, "success", m.Values["outcome"])
		assert.Equal(t, "c-"+ids[job], m.Values["container_id"])
	}
}

// Close waits for a job in flight; a job that has not finished when Close's
// context ends stays pending, to be redelivered, and gets no result.
func TestCloseLeavesAnUnfinishedJobPending(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	stopper := newGate()
	s, err := service.Start(context.Background(), rdb, service.Options{
		Stopper: stopper, Workers: 1, Broker: redisstream.Options{Block: 50 * time.Millisecond},
	})
	require.NoError(t, err)
	addJob(t, rdb, "g1")
	require.Eventually(t, func() bool { return stopper.started.Load() == 1 }, 20*time.Second, 5*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_ = s.Close(ctx)

	p, err := rdb.XPending(context.Background(), runtimejobs.StopJobsChannelPath, "rtmanager").Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), p.Count, "the unfinished job stays pending")
	n, err := rdb.XLen(context.Background(), runtimejobs.JobResultsChannelPath).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
}

// The controllers' chatty Info lines go to debug, with the channel named;
// warnings and errors keep their level.
func TestControllerLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	h := slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})
	l := service.ControllerLogger{Log: slog.New(h)}
	ctx := context.WithValue(context.Background(), extensions.ContextKeyIsChannel, "runtime:stop_jobs")

	l.Info(ctx, "received", extensions.LogInfo{Key: "k", Value: "v"})
	l.Warning(ctx, "slow")
	l.Error(ctx, "broken")

	out := buf.String()
	assert.Contains(t, out, `level=DEBUG msg=received channel=runtime:stop_jobs k=v`)
	assert.Contains(t, out, `level=WARN msg=slow channel=runtime:stop_jobs`)
	assert.Contains(t, out, `level=ERROR msg=broken channel=runtime:stop_jobs`)
}
