package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

// A job counts as written only once a replica confirmed it: on a cluster
// with replicas every job is written, its id on its key; on one without,
// none is, whatever the masters acknowledged.
func TestProduceWaitedCountsOnlyReplicatedWrites(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	entries := make([][]string, 40)
	keys := make([]string, len(entries))
	for i := range entries {
		entries[i] = []string{"game_id", fmt.Sprintf("g-%d", i), "reason", "game_finished"}
		keys[i] = fmt.Sprintf("runtime:{rt-%d}:stop_jobs", i%16)
	}

	cl := testredis.StartCluster(t, testredis.ClusterOptions{Masters: 3, ReplicasPerMaster: 1, NodeTimeout: time.Second})
	cc := cl.Client()
	defer cc.Close()
	st, err := produceWaited(ctx, cc, keys, entries, 0, 16, 5*time.Second, 30*time.Second, nil)
	require.NoError(t, err)
	assert.Equal(t, len(entries), st.written)
	assert.Zero(t, st.unconfirmed)
	for i, id := range st.ids {
		got, err := cc.XRange(ctx, keys[i], id, id).Result()
		require.NoError(t, err)
		require.Len(t, got, 1, "job %d: entry %s on %s", i, id, keys[i])
		assert.Equal(t, entries[i][1], got[0].Values["game_id"])
	}

	bare := testredis.StartCluster(t, testredis.ClusterOptions{Masters: 3})
	bc := bare.Client()
	defer bc.Close()
	st, err = produceWaited(ctx, bc, keys, entries, 0, 16, 300*time.Millisecond, 2*time.Second, nil)
	require.Error(t, err, "no replica can confirm a write")
	assert.Zero(t, st.written)
	assert.Positive(t, st.unconfirmed)
}
