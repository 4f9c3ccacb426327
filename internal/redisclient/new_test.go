package redisclient_test

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/redisclient"
)

func TestNewPicksTheClientByScheme(t *testing.T) {
	c, err := redisclient.New("redis://127.0.0.1:1/2?pool_size=3", redisclient.Tuning{MinPoolSize: 10, Protocol: 2})
	require.NoError(t, err)
	defer c.Close()
	single, ok := c.(*redis.Client)
	require.True(t, ok, "redis:// gives a single-node client")
	assert.Equal(t, 10, single.Options().PoolSize)
	assert.Equal(t, 2, single.Options().DB)
	assert.Equal(t, 2, single.Options().Protocol)

	c, err = redisclient.New("rediss+cluster://u:pw@127.0.0.1:1?addr=127.0.0.1:2&pool_size=30", redisclient.Tuning{MinPoolSize: 10})
	require.NoError(t, err)
	defer c.Close()
	cc, ok := c.(*redis.ClusterClient)
	require.True(t, ok, "rediss+cluster:// gives a cluster client")
	assert.Equal(t, []string{"127.0.0.1:1", "127.0.0.1:2"}, cc.Options().Addrs)
	assert.Equal(t, 30, cc.Options().PoolSize)
	assert.NotNil(t, cc.Options().TLSConfig)
	assert.Equal(t, redisclient.SlotMapMaxAge, cc.Options().ClusterStateReloadInterval)

	_, err = redisclient.New("redis+cluster://u:hunter2@127.0.0.1:1/5", redisclient.Tuning{})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "hunter2")
}
