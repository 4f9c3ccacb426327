package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/redisclient"
)

// clusterPoll is how long --follow waits between two rounds of reads on a
// Redis Cluster when a round found nothing new (see follower).
const clusterPoll = 250 * time.Millisecond

// shardEntry is a stream entry and the index of the key (the shard) it was
// read from. Entry ids are unique per stream only: two shards may hold the
// same id, so an entry is named by (shard, id).
type shardEntry struct {
	shard int
	msg   redis.XMessage
}

// sortEntries orders entries by id, oldest first, then by shard.
func sortEntries(es []shardEntry) {
	slices.SortStableFunc(es, func(a, b shardEntry) int {
		if c := compareIDs(a.msg.ID, b.msg.ID); c != 0 {
			return c
		}
		return a.shard - b.shard
	})
}

// tail prints the latest count entries of the channel at address, oldest
// first, and with follow keeps printing new ones until ctx ends (Ctrl-C: a
// normal end). Sharded, it reads every shard's key: the listing is the
// newest count entries of all shards, merged by entry id. view turns an
// entry into what print shows; shard is nil when the layout is not sharded.
func tail[V any](ctx context.Context, d *deployment, address string, count int64, follow bool,
	view func(shard *int, m redis.XMessage) (V, error), print func(views []V, header bool) error) error {
	keys, err := d.keys(address)
	if err != nil {
		return err
	}
	show := func(es []shardEntry, header bool) error {
		views := make([]V, 0, len(es))
		for _, e := range es {
			v, err := view(d.shardOf(e.shard), e.msg)
			if err != nil {
				return err
			}
			views = append(views, v)
		}
		return print(views, header)
	}
	// Read at least one entry per key: its id is where --follow starts.
	latest, after, err := newest(ctx, d.c, keys, max(count, 1))
	if err != nil {
		return err
	}
	if int64(len(latest)) > count {
		latest = latest[int64(len(latest))-count:]
	}
	if err := show(latest, true); err != nil {
		return err
	}
	if !follow {
		return nil
	}
	f := follower{c: d.c, keys: keys, after: after, cluster: redisclient.IsCluster(d.c), index: map[string]int{}}
	for i, k := range keys {
		f.index[k] = i
	}
	for {
		es, err := f.next(ctx)
		if ctx.Err() != nil {
			return nil // interrupted: the normal end of --follow
		}
		if err != nil {
			return err
		}
		if len(es) > 0 {
			if err := show(es, false); err != nil {
				return err
			}
		}
	}
}

// newest reads the newest n entries of each key and returns them merged,
// oldest first, with each key's newest id ("0-0" for an empty one).
func newest(ctx context.Context, c redis.UniversalClient, keys []string, n int64) ([]shardEntry, []string, error) {
	cmds := perKey(ctx, c, len(keys), func(p redis.Pipeliner, i int) *redis.XMessageSliceCmd {
		return p.XRevRangeN(ctx, keys[i], "+", "-", n)
	})
	var all []shardEntry
	after := make([]string, len(keys))
	for i, cmd := range cmds {
		msgs, err := cmd.Result()
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", keys[i], err)
		}
		after[i] = "0-0"
		if len(msgs) > 0 {
			after[i] = msgs[0].ID
		}
		for _, m := range msgs {
			all = append(all, shardEntry{i, m})
		}
	}
	sortEntries(all)
	return all, after, nil
}

// follower reads what is appended to keys after the ids in after. On one
// Redis a single XREAD BLOCK waits on every key. On a Redis Cluster the
// keys of different shards are in different slots, where a multi-key
// XREAD is refused (CROSSSLOT), and one blocked connection per key would
// not scale with the shard count: each round reads every key once,
// without blocking, in pipelines (go-redis sends each node its part), and
// an empty round waits clusterPoll.
type follower struct {
	c       redis.UniversalClient
	keys    []string
	after   []string
	cluster bool
	index   map[string]int // key → its index in keys
}

// next returns the next new entries, oldest first; none when pollBlock
// (or clusterPoll) passed without any.
func (f *follower) next(ctx context.Context) ([]shardEntry, error) {
	var es []shardEntry
	if f.cluster && len(f.keys) > 1 {
		cmds := perKey(ctx, f.c, len(f.keys), func(p redis.Pipeliner, i int) *redis.XMessageSliceCmd {
			return p.XRangeN(ctx, f.keys[i], "("+f.after[i], "+", 100)
		})
		for i, cmd := range cmds {
			msgs, err := cmd.Result()
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", f.keys[i], err)
			}
			for _, m := range msgs {
				es = append(es, shardEntry{i, m})
			}
		}
		if len(es) == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(clusterPoll):
			}
		}
	} else {
		res, err := readAfter(ctx, f.c, f.keys, f.after, pollBlock)
		if err != nil {
			return nil, err
		}
		for _, s := range res {
			i, ok := f.index[s.Stream]
			if !ok {
				return nil, fmt.Errorf("read %s: Redis answered for a key not asked for", s.Stream)
			}
			for _, m := range s.Messages {
				es = append(es, shardEntry{i, m})
			}
		}
	}
	for _, e := range es {
		f.after[e.shard] = e.msg.ID // entries of one key come in id order
	}
	sortEntries(es)
	return es, nil
}
