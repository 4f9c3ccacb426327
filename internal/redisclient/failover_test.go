package redisclient_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/redisclient"
	"galaxy/rtmanager/internal/testredis"
)

// After kill -9 of a key's master, writes to that key through the client
// New builds go on at the promoted replica within seconds. Without
// FollowFailover go-redis keeps sending them to the dead address until its
// slot map is a minute old.
func TestClusterWritesResumeSoonAfterFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := testredis.StartCluster(t, testredis.ClusterOptions{Masters: 3, ReplicasPerMaster: 1, NodeTimeout: time.Second})
	c, err := redisclient.New(cl.URL(), redisclient.Tuning{})
	require.NoError(t, err)
	defer c.Close()
	require.IsType(t, &redis.ClusterClient{}, c)

	const key = "failover-key"
	var mu sync.Mutex
	var lastOK time.Time
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			wctx, wcancel := context.WithTimeout(ctx, time.Second)
			err := c.Incr(wctx, key).Err()
			wcancel()
			if err == nil {
				mu.Lock()
				lastOK = time.Now()
				mu.Unlock()
			}
		}
	}()
	defer func() { close(stop); <-done }()
	okSince := func(t0 time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		return lastOK.After(t0)
	}
	require.Eventually(t, func() bool { return okSince(time.Time{}) }, 10*time.Second, 10*time.Millisecond, "writes before the failover")

	killedAt := time.Now()
	_, promoted, err := cl.FailoverKey(ctx, key)
	require.NoError(t, err)
	promotedAt := time.Now()
	require.Eventually(t, func() bool { return okSince(promotedAt) }, 10*time.Second, 10*time.Millisecond,
		"writes to %s did not resume within 10s of the failover", key)
	mu.Lock()
	stall := lastOK.Sub(killedAt)
	mu.Unlock()
	t.Logf("kill -9 until every node named the promoted replica: %s; writes resumed %s after the kill", promotedAt.Sub(killedAt), stall)

	// The writes land on the promoted replica.
	n := promoted.Client()
	defer n.Close()
	before, err := n.Get(ctx, key).Int()
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		v, err := n.Get(ctx, key).Int()
		return err == nil && v > before
	}, 10*time.Second, 10*time.Millisecond)
}
