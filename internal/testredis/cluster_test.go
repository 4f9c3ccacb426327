package testredis_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

// One cluster for the whole lifecycle, so the package's tests stay short:
// ready, keys on three masters, a failover of one key's master, the old
// master back as a replica.
func TestClusterFormsFailsOverAndRejoins(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	began := time.Now()
	c := testredis.StartCluster(t, testredis.ClusterOptions{Masters: 3, ReplicasPerMaster: 1, NodeTimeout: time.Second})
	t.Logf("cluster ready in %s", time.Since(began))
	require.Len(t, c.Nodes(), 6)
	require.Contains(t, c.URL(), "redis+cluster://"+c.Nodes()[0].Addr()+"?addr=")

	cc := c.Client()
	defer cc.Close()
	masters := map[string]bool{}
	for _, k := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		require.NoError(t, cc.Set(ctx, k, "v", 0).Err())
		m, err := c.MasterOf(ctx, k)
		require.NoError(t, err)
		masters[m.ID()] = true
		// The node named serves the key itself: no MOVED.
		n := m.Client()
		assert.Equal(t, "v", n.Get(ctx, k).Val(), "MasterOf(%q)", k)
		_ = n.Close()
	}
	assert.Len(t, masters, 3, "eight keys spread over the three masters")

	began = time.Now()
	// Replication is asynchronous: without this wait the replica may not
	// have "a" yet when its master dies.
	m, err := c.MasterOf(ctx, "a")
	require.NoError(t, err)
	require.NoError(t, c.WaitReplicated(ctx, m))
	killed, promoted, err := c.FailoverKey(ctx, "a")
	require.NoError(t, err)
	t.Logf("failover took %s", time.Since(began))
	require.False(t, killed.Running())
	require.NotEqual(t, killed.ID(), promoted.ID())
	now, err := c.MasterOf(ctx, "a")
	require.NoError(t, err)
	require.Equal(t, promoted, now)
	n := promoted.Client()
	defer n.Close()
	assert.Equal(t, "v", n.Get(ctx, "a").Val(), "the replica had the key")

	require.NoError(t, killed.Restart())
	require.NoError(t, c.WaitReady(ctx))
	back, err := c.MasterOf(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, promoted, back, "the old master rejoins as a replica")
}
