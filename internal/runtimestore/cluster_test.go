package runtimestore_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// On a Redis Cluster of three masters with 16 shards every script runs (no
// CROSSSLOT): concurrent stops of games of every shard (merged per shard,
// the shards' calls in one pipeline routed per node), a start, a runtime
// event per game in its shard's events stream, and the reconciliation's
// SCAN finds the records on every master.
func TestClusterShardedStore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := testredis.StartCluster(t, testredis.ClusterOptions{Masters: 3})
	cc := cl.Client()
	t.Cleanup(func() { _ = cc.Close() })
	doc, err := api.Load()
	require.NoError(t, err)
	l, err := api.NewLayout(doc, 16, true)
	require.NoError(t, err)
	ch, ok := doc.ChannelByAddress(events)
	require.True(t, ok)
	s := runtimestore.New(cc, runtimestore.Options{Layout: l})
	require.NoError(t, s.Preload(ctx))

	// At least 48 games, until every shard has some.
	var games []string
	shards := map[int]bool{}
	for i := 0; len(games) < 48 || len(shards) < 16; i++ {
		g := fmt.Sprintf("game-%d", i)
		games = append(games, g)
		shards[l.ShardOf(g)] = true
		_, err := s.Register(ctx, stopruntime.Record{GameID: g, Status: "running", ContainerID: "c-" + g, Runtime: "none", UpdatedAtMS: 1})
		require.NoError(t, err)
	}
	require.Len(t, shards, 16)
	masters := map[string]bool{}
	for n := range 16 {
		m, err := cl.MasterOf(ctx, s.OperationsKeys()[n])
		require.NoError(t, err)
		masters[m.ID()] = true
	}
	require.Len(t, masters, 3, "the shards sit on every master")

	// Half the games stop, concurrently, so batches hold several shards.
	errs := make(chan error, len(games))
	var wg sync.WaitGroup
	half := len(games) / 2
	for _, g := range games[:half] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := s.BeginStop(ctx, stopruntime.BeginRequest{GameID: g, JobID: "1-0", NowMS: 5, TakeoverMS: 1000})
			if err == nil && b.Verdict != stopruntime.BeginStarted {
				err = fmt.Errorf("begin %s: %s", g, b.Verdict)
			}
			if err == nil {
				var f stopruntime.FinishResponse
				f, err = s.FinishStop(ctx, stopruntime.FinishRequest{GameID: g, JobID: "1-0", NowMS: 6, Status: "stopped",
					Result: stopruntime.StoredResult{Outcome: "success"}, Begun: b.Record}, op(g))
				if err == nil && f.Verdict != stopruntime.FinishOK {
					err = fmt.Errorf("finish %s: %s", g, f.Verdict)
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	// A start of a stopped game, and an answered call's entry alone.
	v, _, _, err := s.BeginStart(ctx, games[0], "2-0", "demo", 10, 1000)
	require.NoError(t, err)
	require.Equal(t, runtimestore.StartStarted, v)
	v, _, err = s.FinishStart(ctx, games[0], "2-0", 11, "running", stopruntime.StoredResult{Outcome: "success", ContainerID: "c2"}, "none", op(games[0]))
	require.NoError(t, err)
	require.Equal(t, runtimestore.StartOK, v)
	require.NoError(t, s.AppendOperation(ctx, op(games[1])))

	// Each entry in its game's shard's log.
	logged := map[string]int{}
	for n, key := range s.OperationsKeys() {
		msgs, err := cc.XRange(ctx, key, "-", "+").Result()
		require.NoError(t, err)
		for _, m := range msgs {
			g, _ := m.Values["game_id"].(string)
			assert.Equal(t, n, l.ShardOf(g), "entry of %s in shard %d", g, n)
			logged[g]++
		}
	}
	for i, g := range games[:half] {
		want := 1
		if i < 2 {
			want = 2
		}
		assert.Equal(t, want, logged[g], g)
	}

	// An exit of each running game: its event in its shard's stream.
	for _, g := range games[half:] {
		code := int64(137)
		_, err := s.Transition(ctx, l.Key(ch, l.ShardOf(g)), 1000, runtimestore.Change{GameID: g, ContainerID: "c-" + g,
			From: "running", To: "exited", NowMS: 20, ExitCode: &code, Event: []string{"game_id", g, "type", "engine_exited"}})
		require.NoError(t, err, g)
	}
	evs := 0
	for n := range 16 {
		msgs, err := cc.XRange(ctx, l.Key(ch, n), "-", "+").Result()
		require.NoError(t, err)
		for _, m := range msgs {
			g, _ := m.Values["game_id"].(string)
			assert.Equal(t, n, l.ShardOf(g), "event of %s in shard %d", g, n)
			evs++
		}
	}
	assert.Equal(t, len(games)-half, evs)

	// The SCAN of every master finds the records by status.
	recs, err := s.Watched(ctx, "running", "exited", "stopped")
	require.NoError(t, err)
	byStatus := map[string]int{}
	for _, r := range recs {
		byStatus[r.Status]++
	}
	assert.Equal(t, map[string]int{"running": 1, "stopped": half - 1, "exited": len(games) - half}, byStatus)
}
