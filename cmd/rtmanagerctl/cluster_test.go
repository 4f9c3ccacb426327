package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

// rtmanagerctl takes a cluster URL, and refuses (exit 2, naming the right
// scheme) a URL whose scheme does not match what the server is.
func TestClusterURLs(t *testing.T) {
	cl := testredis.StartCluster(t, testredis.ClusterOptions{Masters: 3})
	single := testredis.Start(t)

	node := cl.Nodes()[2].Addr()
	o := cli(t, "redis://"+node+"/0", "status", "g-1")
	assert.Equal(t, 2, o.code, o.stderr)
	assert.Contains(t, o.stderr, "reaches "+node+", a Redis Cluster node: use redis+cluster://"+node+"?addr=")

	o = cli(t, "redis+cluster://"+single.Addr(), "status", "g-1")
	assert.Equal(t, 2, o.code, o.stderr)
	assert.Contains(t, o.stderr, "not in cluster mode: use redis://")

	o = cli(t, cl.URL(), "register", "g-1", "--container", "c1", "--endpoint", "127.0.0.1:9", "--runtime", "none")
	requireOK(t, o)
	o = cli(t, cl.URL(), "--json", "status", "g-1")
	requireOK(t, o)
	require.Contains(t, o.stdout, `"c1"`)
}
