package jobclient_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisclient"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/runtimes/none"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/service"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
	"galaxy/rtmanager/jobclient"
)

// runRTManager runs rtmanager's stop pipeline in process (none runtime) on
// rdb, with shards shards.
func runRTManager(t *testing.T, rdb redis.UniversalClient, shards int) *runtimestore.Store {
	t.Helper()
	doc, err := api.Load()
	require.NoError(t, err)
	layout, err := api.NewLayout(doc, shards, redisclient.IsCluster(rdb))
	require.NoError(t, err)
	store := runtimestore.New(rdb, runtimestore.Options{Layout: layout})
	svc, err := stopruntime.New(store, map[string]stopruntime.Driver{"none": none.Driver{}}, stopruntime.Options{})
	require.NoError(t, err)
	run, err := service.Start(context.Background(), rdb, service.Options{
		Stopper: svc, Workers: 4, Logger: slog.New(slog.DiscardHandler),
		Broker: redisstream.Options{Block: 100 * time.Millisecond, Shards: shards},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = run.Close(ctx)
	})
	return store
}

func newClient(t *testing.T, rdb redis.UniversalClient, opts jobclient.Options) *jobclient.Client {
	t.Helper()
	c, err := jobclient.New(rdb, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestSendStopAndAwaitItsResult(t *testing.T) {
	rdb := testredis.Start(t).Client()
	store := runRTManager(t, rdb, 0)
	c := newClient(t, rdb, jobclient.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	_, err := store.Register(ctx, stopruntime.Record{GameID: "game-1", Status: "running", ContainerID: "c1", Runtime: "none", UpdatedAtMS: 1})
	require.NoError(t, err)

	job, err := c.SendStop(ctx, runtimejobs.RuntimeStopJobSchema{GameId: "game-1", Reason: "game_finished"})
	require.NoError(t, err)
	assert.Equal(t, "game-1", job.GameID)
	entries, err := rdb.XRange(ctx, "runtime:stop_jobs", job.ID, job.ID).Result()
	require.NoError(t, err)
	require.Len(t, entries, 1, "the job is on the stop-job stream under the id Send returned")
	assert.Equal(t, map[string]any{"game_id": "game-1", "reason": "game_finished"}, entries[0].Values)

	res, err := c.Await(ctx, job)
	require.NoError(t, err)
	assert.Equal(t, job.ID, res.JobId)
	assert.Equal(t, "success", res.Outcome)
	assert.Equal(t, "stop", res.Operation)
	got, err := rdb.XRange(ctx, "runtime:job_results", res.EntryID, res.EntryID).Result()
	require.NoError(t, err)
	require.Len(t, got, 1, "EntryID is the result's id")
	assert.Equal(t, job.ID, got[0].Values["job_id"])

	// A second job for a game rtmanager does not know: answered too, and
	// Await called after the result was written still finds it.
	job2, err := c.SendStop(ctx, runtimejobs.RuntimeStopJobSchema{GameId: "game-2", Reason: "admin_request"})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return rdb.XLen(ctx, "runtime:job_results").Val() == 2 }, 20*time.Second, 10*time.Millisecond)
	res2, err := c.Await(ctx, job2)
	require.NoError(t, err)
	assert.Equal(t, job2.ID, res2.JobId)
	assert.Equal(t, "failure", res2.Outcome)
	assert.Equal(t, "not_found", res2.ErrorCode)
}

func TestSendRefusesAJobTheContractRefuses(t *testing.T) {
	rdb := testredis.Start(t).Client()
	c := newClient(t, rdb, jobclient.Options{})
	ctx := context.Background()
	for name, job := range map[string]runtimejobs.RuntimeStopJobSchema{
		"unknown reason": {GameId: "game-1", Reason: "because"},
		"empty game":     {GameId: "", Reason: "game_finished"},
		"game too long":  {GameId: runtimejobs.GameIDSchema(string(make([]byte, 200))), Reason: "game_finished"},
	} {
		_, err := c.SendStop(ctx, job)
		require.Error(t, err, name)
	}
	_, err := c.SendStart(ctx, runtimejobs.RuntimeStartJobSchema{GameId: "game-1", Engine: "Not/A/Profile"})
	require.Error(t, err)
	n, err := rdb.Exists(ctx, "runtime:stop_jobs", "runtime:start_jobs").Result()
	require.NoError(t, err)
	assert.Zero(t, n, "nothing was appended")
}

func TestAwaitEndsWithItsContext(t *testing.T) {
	rdb := testredis.Start(t).Client()
	c := newClient(t, rdb, jobclient.Options{PollBlock: 50 * time.Millisecond})
	job, err := c.SendStop(context.Background(), runtimejobs.RuntimeStopJobSchema{GameId: "game-1", Reason: "game_finished"})
	require.NoError(t, err)
	// A result of another job does not end the wait.
	require.NoError(t, rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: "runtime:job_results", Values: []any{
		"job_id", "1-1", "game_id", "game-1", "operation", "stop", "outcome", "success", "error_code", "", "error_message", "",
		"container_id", "", "engine_endpoint", "", "completed_at_ms", "1",
	}}).Err())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err = c.Await(ctx, job)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestAwaitRefusesAJobIDThatIsNoEntryID(t *testing.T) {
	rdb := testredis.Start(t).Client()
	c := newClient(t, rdb, jobclient.Options{})
	_, err := c.Await(context.Background(), jobclient.Job{ID: "nonsense", GameID: "game-1"})
	require.ErrorContains(t, err, "not a stream entry id")
}

// With 16 shards, on one Redis and on a real Redis Cluster: each job goes
// to the stop-job stream of its game's shard, and Await finds its result
// in that shard's result stream.
func TestShardedSendAndAwait(t *testing.T) {
	for name, rdb := range map[string]func(t *testing.T) redis.UniversalClient{
		"single": func(t *testing.T) redis.UniversalClient { return testredis.Start(t).Client() },
		"cluster": func(t *testing.T) redis.UniversalClient {
			return testredis.StartCluster(t, testredis.ClusterOptions{Masters: 3}).Client()
		},
	} {
		t.Run(name, func(t *testing.T) {
			rdb := rdb(t)
			store := runRTManager(t, rdb, 16)
			c := newClient(t, rdb, jobclient.Options{Shards: 16})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			l := c.Layout()
			require.True(t, l.Sharded)
			require.Equal(t, 16, l.Shards)

			var jobs []jobclient.Job
			shards := map[int]bool{}
			for i := range 24 {
				g := fmt.Sprintf("game-%d", i)
				_, err := store.Register(ctx, stopruntime.Record{GameID: g, Status: "running", ContainerID: "c-" + g, Runtime: "none", UpdatedAtMS: 1})
				require.NoError(t, err)
				job, err := c.SendStop(ctx, runtimejobs.RuntimeStopJobSchema{GameId: runtimejobs.GameIDSchema(g), Reason: "game_finished"})
				require.NoError(t, err)
				key := c.JobsKey(g, false)
				assert.Equal(t, fmt.Sprintf("runtime:{rt-%d}:stop_jobs", api.Shard(g, 16)), key)
				got, err := rdb.XRange(ctx, key, job.ID, job.ID).Result()
				require.NoError(t, err)
				require.Len(t, got, 1, "job %s of %s is on its shard's stream", job.ID, g)
				shards[api.Shard(g, 16)] = true
				jobs = append(jobs, job)
			}
			require.Greater(t, len(shards), 8, "the games spread over the shards")
			for _, job := range jobs {
				res, err := c.Await(ctx, job)
				require.NoError(t, err)
				assert.Equal(t, job.ID, res.JobId)
				assert.Equal(t, job.GameID, res.GameId)
				assert.Equal(t, "success", res.Outcome)
				got, err := rdb.XRange(ctx, c.ResultsKey(job.GameID), res.EntryID, res.EntryID).Result()
				require.NoError(t, err)
				require.Len(t, got, 1, "the result is in the game's shard")
			}
			for _, plain := range []string{"runtime:stop_jobs", "runtime:job_results"} {
				n, err := rdb.Exists(ctx, plain).Result()
				require.NoError(t, err)
				assert.Zero(t, n, "the plain key %s is not used", plain)
			}
		})
	}
}
