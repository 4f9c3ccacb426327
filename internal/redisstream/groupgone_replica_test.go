package redisstream_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

// groupLastDelivered is the group's last-delivered id, "" while there is no
// group.
func groupLastDelivered(t testing.TB, rdb redis.UniversalClient) string {
	t.Helper()
	gs, err := rdb.XInfoGroups(context.Background(), jobs).Result()
	if err != nil {
		return ""
	}
	for _, g := range gs {
		if g.Name == group {
			return g.LastDeliveredID
		}
	}
	return ""
}

// replicaOptions: a consumer name of its own, and no claims between the
// replicas during the test (each keeps what it read).
func replicaOptions(consumer string) redisstream.Options {
	o := fastOptions()
	o.Consumer = consumer
	o.ClaimIdle = time.Minute
	o.ClaimInterval = 100 * time.Millisecond
	return o
}

// A replica that sees no NOGROUP: replica B holds job 1 (its only room)
// while the group is destroyed; replica A, reading, sees NOGROUP and
// recreates the group after the last entry it read (job 2), so the new
// group will never deliver job 1. B's read loop, with no room, reads
// nothing and sees no NOGROUP; its handler then finishes job 1. Before, B's
// commit found job 1 not pending and wrote nothing: job 1 got no result.
// Now the commit sees that job 1 is at or before where the recreated group
// started (recorded when the group was created) and answers it, with
// nothing to acknowledge. failFirst: B's first handling fails, so job 1
// waits for its retry when B finds it gone (the claim for the retry finds
// nothing; before, the entry was let go unanswered).
func testReplicaWithoutNoGroup(t *testing.T, failFirst bool) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()

	release := make(chan struct{})
	got := make(chan string, 4)
	var bCalls atomic.Int32
	bOpts := replicaOptions("replica-b")
	bOpts.Prefetch = 1
	b := startApp(t, rdb, bOpts, 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		n := bCalls.Add(1)
		d, _ := redisstream.DeliveryFrom(ctx)
		got <- d.ID()
		if n == 1 {
			<-release
			if failFirst {
				return errors.New("first handling fails")
			}
		}
		return answer(ctx, c, msg)
	})
	job1 := addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	select {
	case id := <-got:
		require.Equal(t, job1, id)
	case <-time.After(20 * time.Second):
		t.Fatal("replica B never received job 1")
	}

	a := startApp(t, rdb, replicaOptions("replica-a"), 1, answer)
	job2 := addJob(t, rdb, "game_id", "g2", "reason", "game_finished")
	require.Eventually(t, func() bool { return resultsByJob(t, rdb)[job2] == 1 }, 20*time.Second, 10*time.Millisecond,
		"replica A answers job 2")

	require.NoError(t, rdb.XGroupDestroy(ctx, jobs, group).Err())
	// A recreates the group; it starts past job 1.
	require.Eventually(t, func() bool { return groupLastDelivered(t, rdb) == job2 }, 20*time.Second, 10*time.Millisecond,
		"replica A recreates the group after job 2")

	close(release)
	require.Eventually(t, func() bool { return resultsByJob(t, rdb)[job1] >= 1 }, 20*time.Second, 10*time.Millisecond,
		"job 1, held by the replica that saw no NOGROUP, is answered")
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 0 }, 20*time.Second, 10*time.Millisecond)
	// Stopped, neither writes anything more.
	a.stop(t)
	b.stop(t)
	byJob := resultsByJob(t, rdb)
	assert.Equal(t, map[string]int{job1: 1, job2: 1}, byJob, "each job answered exactly once")
	if failFirst {
		assert.Equal(t, int32(2), bCalls.Load(), "B handled job 1 twice (failed, retried)")
	} else {
		assert.Equal(t, int32(1), bCalls.Load())
	}
}

func TestReplicaThatSeesNoNoGroupAnswersEntriesInHand(t *testing.T) {
	testReplicaWithoutNoGroup(t, false)
}

func TestReplicaThatSeesNoNoGroupRetriesEntriesInHand(t *testing.T) {
	testReplicaWithoutNoGroup(t, true)
}

// XGROUP DESTROY while three replicas work through a backlog, each holding
// entries: every job is answered, nothing is left pending, and the only
// duplicates are jobs answered before the destroy and delivered again by
// the recreated group (at most twice each). The replicas that see no
// NOGROUP answer the entries they hold that the new group starts past;
// before, those jobs got no result.
func TestGroupDestroyedUnderReplicasAnswersEveryJob(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	const n = 600
	_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := 0; i < n; i++ {
			p.XAdd(ctx, &redis.XAddArgs{Stream: jobs, Values: []string{"game_id", fmt.Sprintf("g%d", i), "reason", "game_finished"}})
		}
		return nil
	})
	require.NoError(t, err)
	ids := map[string]bool{}
	for _, m := range streamEntries(t, rdb, jobs) {
		ids[m.ID] = true
	}
	// One fast replica, which sees NOGROUP first and recreates the group
	// before the oldest entry it holds, and two slow ones, which hold
	// older entries and, full, neither read nor commit for a while: most
	// likely they see no NOGROUP.
	var apps []*app
	for i, pause := range []time.Duration{2 * time.Millisecond, 100 * time.Millisecond, 100 * time.Millisecond} {
		o := fastOptions()
		o.Consumer = fmt.Sprintf("replica-%d", i)
		o.Prefetch = 8
		o.ReadCount = 4
		if i > 0 {
			o.Prefetch = 2
		}
		apps = append(apps, startApp(t, rdb, o, 2, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
			time.Sleep(pause) // keeps entries in hand
			return answer(ctx, c, msg)
		}))
	}
	waitLen(t, rdb, results, n/5)

	// What was answered before the destroy, read in the same step.
	var before *redis.XMessageSliceCmd
	_, err = rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		before = p.XRange(ctx, results, "-", "+")
		p.XGroupDestroy(ctx, jobs, group)
		return nil
	})
	require.NoError(t, err)
	answeredBefore := map[string]bool{}
	for _, m := range before.Val() {
		answeredBefore[m.Values["job_id"].(string)] = true
	}

	require.Eventually(t, func() bool { return len(resultsByJob(t, rdb)) == n }, 60*time.Second, 50*time.Millisecond,
		"every job answered")
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 0 }, 20*time.Second, 10*time.Millisecond)
	for _, a := range apps {
		a.stop(t)
	}
	dups := 0
	for id, c := range resultsByJob(t, rdb) {
		assert.True(t, ids[id], "result for an unknown job %s", id)
		if c > 1 {
			dups++
			assert.Equal(t, 2, c, "job %s answered %d times", id, c)
			assert.True(t, answeredBefore[id], "job %s answered twice, the first time not before the destroy", id)
		}
	}
	t.Logf("%d jobs answered before the destroy, %d answered twice", len(answeredBefore), dups)
}

// A group recreated by hand (not by the broker: its record does not move)
// past an entry a replica holds: the replica, having seen NOGROUP, moves
// the group back before the entry (XGROUP SETID), so the entry is read
// again into the group and its commit passes. The broker is kept from
// recreating the group itself meanwhile by a record key of the wrong type,
// which it refuses to write, and says so.
func TestReplicaFindingAGroupMadeByHandMovesItBack(t *testing.T) {
	h := holdJobOneThroughADestroy(t)
	rdb, ctx, record, a, job1, release := h.rdb, context.Background(), h.record, h.app, h.job1, h.release
	// By hand, after job 1; then the record as it was.
	require.NoError(t, rdb.XGroupCreate(ctx, jobs, group, "$").Err())
	require.Equal(t, job1, groupLastDelivered(t, rdb))
	require.NoError(t, rdb.Rename(ctx, record+".saved", record).Err())

	require.Eventually(t, func() bool { return groupLastDelivered(t, rdb) == job1 && pendingCount(t, rdb) == 1 }, 20*time.Second, 10*time.Millisecond,
		"the group is moved back and job 1 read again into it")
	close(release)
	require.Eventually(t, func() bool { return resultsByJob(t, rdb)[job1] == 1 }, 20*time.Second, 10*time.Millisecond,
		"job 1 is answered")
	require.Eventually(t, func() bool { return pendingCount(t, rdb) == 0 }, 20*time.Second, 10*time.Millisecond)
	a.stop(t)
	assert.Equal(t, map[string]int{job1: 1}, resultsByJob(t, rdb))
	assert.Equal(t, int32(1), h.calls.Load())
}

// A replica that sees NOGROUP and finds a group another broker recreated
// past an entry it holds leaves the group where it is (no replay of what
// others answered since) and answers the entry at its commit, outside the
// group. The other broker's create runs at a chosen moment: the record key
// is of the wrong type until then, so this replica cannot recreate the
// group itself, and the test restores it and creates the group in one
// MULTI, with the broker's own script.
func TestReplicaFindingAGroupABrokerMadeLeavesIt(t *testing.T) {
	h := holdJobOneThroughADestroy(t)
	rdb, ctx, record, a, job1, release := h.rdb, context.Background(), h.record, h.app, h.job1, h.release
	// "Another broker" recreates the group at job 1 (it held nothing older).
	var created *redis.Cmd
	_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Rename(ctx, record+".saved", record)
		created = redisstream.CreateGroupScript.Eval(ctx, p, []string{jobs, record}, group, job1)
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []any{int64(1), int64(2)}, created.Val(), "created, epoch 2")
	require.Equal(t, job1, groupLastDelivered(t, rdb))

	require.Eventually(t, func() bool { return a.broker.Health() == nil }, 20*time.Second, 10*time.Millisecond,
		"the replica reads from the group again")
	close(release)
	require.Eventually(t, func() bool { return resultsByJob(t, rdb)[job1] == 1 }, 20*time.Second, 10*time.Millisecond,
		"job 1 is answered")
	a.stop(t)
	assert.Equal(t, map[string]int{job1: 1}, resultsByJob(t, rdb))
	assert.Equal(t, int64(0), pendingCount(t, rdb))
	marked, err := rdb.HExists(ctx, record, "a:"+job1).Result()
	require.NoError(t, err)
	// Moved back, the group would have delivered job 1 again and its commit
	// acknowledged it there, leaving no mark.
	assert.True(t, marked, "job 1 answered outside the group, not read again into it")
}

// A group record of the wrong type refuses only creating the group (a
// write it could not finish): a group already there is read and its jobs
// answered, and the key is left as it was.
func TestGroupRecordOfTheWrongTypeStopsOnlyACreate(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	ctx := context.Background()
	record := jobs + ":" + group + ":epoch"
	require.NoError(t, rdb.XGroupCreateMkStream(ctx, jobs, group, "0").Err())
	require.NoError(t, rdb.Set(ctx, record, "x", 0).Err())
	a := startApp(t, rdb, fastOptions(), 1, answer)
	job := addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	require.Eventually(t, func() bool { return resultsByJob(t, rdb)[job] == 1 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, a.broker.Health())
	v, err := rdb.Get(ctx, record).Result()
	require.NoError(t, err)
	assert.Equal(t, "x", v)
}

// heldThroughDestroy is a replica holding job 1 in its handler (until
// release is closed) while its group was destroyed and the group record
// set to the wrong type, so the broker cannot recreate the group itself;
// the record waits under record+".saved".
type heldThroughDestroy struct {
	rdb     *redis.Client
	record  string
	app     *app
	job1    string
	release chan struct{}
	calls   atomic.Int32
}

func holdJobOneThroughADestroy(t *testing.T) *heldThroughDestroy {
	t.Helper()
	srv := testredis.Start(t)
	h := &heldThroughDestroy{rdb: newClient(t, srv), record: jobs + ":" + group + ":epoch", release: make(chan struct{})}
	ctx := context.Background()
	got := make(chan string, 4)
	o := replicaOptions("replica-b")
	o.Prefetch = 2 // room to read while it holds job 1: it sees NOGROUP
	h.app = startApp(t, h.rdb, o, 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		if h.calls.Add(1) == 1 {
			d, _ := redisstream.DeliveryFrom(ctx)
			got <- d.ID()
			<-h.release
		}
		return answer(ctx, c, msg)
	})
	h.job1 = addJob(t, h.rdb, "game_id", "g1", "reason", "game_finished")
	select {
	case id := <-got:
		require.Equal(t, h.job1, id)
	case <-time.After(20 * time.Second):
		t.Fatal("the replica never received job 1")
	}
	require.NoError(t, h.rdb.Rename(ctx, h.record, h.record+".saved").Err())
	require.NoError(t, h.rdb.Set(ctx, h.record, "x", 0).Err())
	require.NoError(t, h.rdb.XGroupDestroy(ctx, jobs, group).Err())
	require.Eventually(t, func() bool {
		err := h.app.broker.Health()
		return err != nil && strings.Contains(err.Error(), "key "+h.record+" holds a string, not a hash")
	}, 20*time.Second, 10*time.Millisecond, "the broker saw NOGROUP and refuses a record of the wrong type")
	return h
}
