package redisstream

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Which Redis must answer for the broker to work. On a single Redis that
// is the one server. On a cluster a PING goes to a random node, so it says
// nothing about the nodes the broker needs: those are the masters of the
// keys the broker owns, and each is checked with a command on that key
// sent to that master directly.

// keys are the Redis keys this reader depends on: the stream keys it reads
// (one per shard).
func (r *reader) keys() []string {
	keys := make([]string, len(r.shards))
	for i, sh := range r.shards {
		keys[i] = sh.key
	}
	return keys
}

// ownedKeys are the keys of every subscribed channel.
func (b *Broker) ownedKeys() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var keys []string
	for _, r := range b.readers {
		keys = append(keys, r.keys()...)
	}
	return keys
}

// CheckRedis returns nil when the Redis nodes serving every key the broker
// owns answer and accept writes; otherwise an error naming the first key
// and node that do not. /readyz uses it.
func (b *Broker) CheckRedis(ctx context.Context) error {
	return b.checkKeys(ctx, b.ownedKeys())
}

// checkKeys checks the nodes that serve keys: on a single Redis, PING and
// the write probe; on a cluster, for each key EXISTS on its master (which
// answers MOVED or CLUSTERDOWN when it does not serve the key) and, once
// per master, the write probe. Errors other than OOM from the write probe
// (no scripting for this user) do not count: only a refusal for memory does.
func (b *Broker) checkKeys(ctx context.Context, keys []string) error {
	cc, ok := b.rdb.(*redis.ClusterClient)
	if !ok || len(keys) == 0 {
		if err := b.rdb.Ping(ctx).Err(); err != nil {
			return err
		}
		return probeWrites(ctx, b.rdb)
	}
	probed := map[string]bool{}
	for _, k := range keys {
		m, err := cc.MasterForKey(ctx, k)
		if err != nil {
			return fmt.Errorf("key %s: find its master: %w", k, err)
		}
		addr := m.Options().Addr
		if err := m.Exists(ctx, k).Err(); err != nil {
			if redis.HasErrorPrefix(err, "MOVED") || redis.HasErrorPrefix(err, "ASK") {
				// The slot map is out of date: read it again for the next check.
				cc.ReloadState(ctx)
			}
			return fmt.Errorf("key %s: master %s: %w", k, addr, err)
		}
		if !probed[addr] {
			probed[addr] = true
			if err := probeWrites(ctx, m); err != nil {
				return fmt.Errorf("key %s: master %s: %w", k, addr, err)
			}
		}
	}
	return nil
}

// probeWrites runs the write probe; only OOM and connection errors count.
func probeWrites(ctx context.Context, c redis.Cmdable) error {
	if err := c.Eval(ctx, writeProbe, nil).Err(); isOOM(err) || (err != nil && isConnErr(err)) {
		return err
	}
	return nil
}

// mastersAnswer is nil on a single Redis; on a cluster, nil when every
// master of the slot map answers PING. A handler's keys may live on any
// master, so a handler's connection error is only the runtime's when all
// of them answer.
func (b *Broker) mastersAnswer(ctx context.Context) error {
	cc, ok := b.rdb.(*redis.ClusterClient)
	if !ok {
		return nil
	}
	return cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		if err := m.Ping(ctx).Err(); err != nil {
			return fmt.Errorf("master %s: %w", m.Options().Addr, err)
		}
		return nil
	})
}
