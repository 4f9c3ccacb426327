package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

// The URL's scheme must match what the server is: a redis:// URL that
// reaches a cluster node, or a cluster URL that reaches a plain server, is
// a start-up error naming the right scheme (exit 2), never a MOVED loop.
// A cluster URL to a cluster starts and becomes ready.
func TestRedisURLMustMatchClusterMode(t *testing.T) {
	cl := testredis.StartCluster(t, testredis.ClusterOptions{Masters: 3})
	single := testredis.Start(t)
	t.Run("redis:// to a cluster node", func(t *testing.T) {
		node := cl.Nodes()[1].Addr()
		code, stderr := runToExit(t, 30*time.Second, "--redis-url", "redis://"+node+"/0", "--runtime", "none", "--http-addr", "")
		wantUsageExit(t, code, stderr, "--redis-url reaches "+node+", a Redis Cluster node: use redis+cluster://"+node+"?addr=")
	})
	t.Run("cluster URL to a plain server", func(t *testing.T) {
		code, stderr := runToExit(t, 30*time.Second, "--redis-url", "redis+cluster://"+single.Addr(), "--runtime", "none", "--http-addr", "")
		wantUsageExit(t, code, stderr, "not in cluster mode: use redis://")
	})
	t.Run("cluster URL to a cluster", func(t *testing.T) {
		p := startBinary(t, "--redis-url", cl.URL(), "--runtime", "none")
		require.Equal(t, http.StatusOK, p.get("/readyz"))
		require.NotContains(t, p.stderr.String(), "CROSSSLOT")
	})
}
