package redisclient

import (
	"context"
	"net"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// SlotMapMaxAge is how old a cluster client's slot map may get before it
// is read again (go-redis's default is 60s).
const SlotMapMaxAge = 5 * time.Second

// ReloadEvery is the least time between two slot-map reloads that
// connection errors trigger.
const ReloadEvery = 200 * time.Millisecond

// FollowFailover makes c read the cluster's slot map again soon after any
// node fails to answer (a failed dial, a dropped connection, CLUSTERDOWN),
// and again on every such error at most every ReloadEvery, so while a node
// is away the map is refreshed as long as commands still go to it. go-redis
// itself reloads on MOVED and READONLY, and otherwise only when the map is
// older than ClusterStateReloadInterval: a command whose master was killed
// gets "connection refused" and no reload, and keeps going to the dead
// address until then (go-redis issue #3979). Call it before c's first
// command: the hook is set on each node client as c creates it.
func FollowFailover(c *redis.ClusterClient) {
	r := &reloader{c: c}
	c.OnNewNode(func(n *redis.Client) { n.AddHook(r) })
}

type reloader struct {
	c    *redis.ClusterClient
	last atomic.Int64 // unix nanoseconds of the last reload asked for
}

func (r *reloader) kick(err error) {
	if !IsUnreachable(err) {
		return
	}
	now := time.Now().UnixNano()
	last := r.last.Load()
	if now-last < int64(ReloadEvery) || !r.last.CompareAndSwap(last, now) {
		return
	}
	// Asynchronous: go-redis reloads in the background and merges
	// requests that come while a reload runs.
	r.c.ReloadState(context.Background())
}

func (r *reloader) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		r.kick(err)
		return conn, err
	}
}

func (r *reloader) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		r.kick(err)
		return err
	}
}

func (r *reloader) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		r.kick(err)
		return err
	}
}
