package redisclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/redisclient"
	"galaxy/rtmanager/internal/testredis"
)

func TestIsUnreachable(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()
	ctx := context.Background()
	// Real answers of Redis about the command are not "unreachable".
	require.NoError(t, c.Set(ctx, "s", "v", 0).Err())
	wrongType := c.XLen(ctx, "s").Err()
	require.Error(t, wrongType)
	assert.False(t, redisclient.IsUnreachable(wrongType), "WRONGTYPE")
	assert.False(t, redisclient.IsUnreachable(redis.Nil))
	assert.False(t, redisclient.IsUnreachable(nil))

	require.NoError(t, srv.Kill())
	refused := c.Ping(ctx).Err()
	assert.True(t, redisclient.IsUnreachable(refused), "a killed server: %v", refused)
	for _, err := range []error{
		io.EOF, fmt.Errorf("read: %w", syscall.ECONNRESET), redis.ErrClosed,
		errors.New("CLUSTERDOWN The cluster is down"), errors.New("TRYAGAIN Multiple keys request during rehashing of slot"),
		errors.New("LOADING Redis is loading the dataset in memory"),
	} {
		assert.True(t, redisclient.IsUnreachable(fmt.Errorf("begin stop: %w", err)), "%v", err)
	}
}
