package testredis_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

func TestKillAndRestartKeepsDataWithAppendOnly(t *testing.T) {
	ctx := context.Background()
	srv := testredis.Start(t, testredis.Options{AppendOnly: true})
	port, dir := srv.Port(), srv.Dir()

	c := srv.Client()
	defer c.Close()
	require.NoError(t, c.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []string{"k", "v"}}).Err())

	require.NoError(t, srv.Kill())
	require.False(t, srv.Running())
	require.Error(t, c.Ping(ctx).Err(), "a killed server must not answer")

	require.NoError(t, srv.Restart())
	require.Equal(t, port, srv.Port())
	require.Equal(t, dir, srv.Dir())
	msgs, err := c.XRange(ctx, "s", "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	require.Equal(t, "v", msgs[0].Values["k"])
}

func TestKillWithoutPersistenceLosesData(t *testing.T) {
	ctx := context.Background()
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
	require.NoError(t, srv.Kill())
	require.NoError(t, srv.Restart())
	require.ErrorIs(t, c.Get(ctx, "k").Err(), redis.Nil)
}

func TestStopIsGraceful(t *testing.T) {
	ctx := context.Background()
	srv := testredis.Start(t, testredis.Options{AppendOnly: true})
	c := srv.Client()
	defer c.Close()
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
	require.NoError(t, srv.Stop())
	require.NoError(t, srv.Restart())
	require.Equal(t, "v", c.Get(ctx, "k").Val())
}

func TestExtraArgsArePassed(t *testing.T) {
	srv := testredis.Start(t, testredis.Options{Args: []string{"--requirepass", "s3cret"}})
	c := srv.Client()
	defer c.Close()
	require.ErrorContains(t, c.Ping(context.Background()).Err(), "NOAUTH")
	authed := redis.NewClient(&redis.Options{Addr: srv.Addr(), Password: "s3cret"})
	defer authed.Close()
	require.NoError(t, authed.Ping(context.Background()).Err())
}

func TestMissingBinaryIsOneClearError(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := testredis.New(testredis.Options{})
	require.ErrorIs(t, err, testredis.ErrNotInstalled)
	require.Contains(t, err.Error(), "apt-get install redis-server")
}
