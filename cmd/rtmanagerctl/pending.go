package main

import (
	"context"
	"flag"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"
)

func cmdPending(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("pending", flag.ContinueOnError)
	group := fs.String("group", defaultGroup, "consumer group of "+jobsKey+" (sharded: of every shard's key)")
	count := fs.Int64("count", 10, "how many of the oldest pending entries to list")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("pending", pos, 0, "no arguments"); err != nil {
		return err
	}
	if *group == "" {
		return usagef("pending: --group: must not be empty")
	}
	if *count < 0 {
		return usagef("pending: --count: must not be negative")
	}
	d, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	keys, err := d.keys(jobsKey)
	if err != nil {
		return err
	}
	shards, err := readPending(ctx, d.c, keys, *group, *count)
	if err != nil {
		return err
	}
	var v pendingView
	if d.layout.Sharded {
		ch, err := d.channel(jobsKey)
		if err != nil {
			return err
		}
		v = sumPending(ch.Stream.ShardedAddress, *group, shards, *count)
	} else {
		v = shards[0].pendingView
	}
	if a.g.json {
		return writeJSON(a.stdout, v)
	}
	return printPending(a.stdout, v)
}

// shardPending is the group on one shard's key.
type shardPending struct {
	shard int
	pendingView
}

// readPending reads the group on every key (XINFO GROUPS, the XPENDING
// summary and the count oldest pending entries), in pipelines. A key or
// group that does not exist is an error naming it.
func readPending(ctx context.Context, c redis.UniversalClient, keys []string, group string, count int64) ([]shardPending, error) {
	type cmds struct {
		exists *redis.IntCmd
		groups *redis.XInfoGroupsCmd
		sum    *redis.XPendingCmd
		oldest *redis.XPendingExtCmd
	}
	all := perKey(ctx, c, len(keys), func(p redis.Pipeliner, i int) cmds {
		cs := cmds{
			exists: p.Exists(ctx, keys[i]),
			groups: p.XInfoGroups(ctx, keys[i]),
			sum:    p.XPending(ctx, keys[i], group),
		}
		if count > 0 {
			cs.oldest = p.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: keys[i], Group: group, Start: "-", End: "+", Count: count})
		}
		return cs
	})
	// Every missing stream is counted first: a --shards larger than
	// rtmanager's shows as shards without a stream.
	var missing []string
	for i, cs := range all {
		n, err := cs.exists.Result()
		if err != nil {
			return nil, fmt.Errorf("look up %s: %w", keys[i], err)
		}
		if n == 0 {
			missing = append(missing, keys[i])
		}
	}
	switch {
	case len(missing) > 0 && len(keys) == 1:
		return nil, fmt.Errorf("stream %s does not exist: no job was sent and rtmanager never started", keys[0])
	case len(missing) > 0:
		return nil, fmt.Errorf("stream %s does not exist (%d of %d shard keys missing): no job was sent to it and rtmanager never started, or --shards is not rtmanager's",
			missing[0], len(missing), len(keys))
	}
	out := make([]shardPending, 0, len(keys))
	for i, cs := range all {
		key := keys[i]
		groups, err := cs.groups.Result()
		if err != nil {
			return nil, fmt.Errorf("read the groups of %s: %w", key, err)
		}
		v := pendingView{Stream: key, Group: group, Consumers: []consumerView{}, Oldest: []pendingEntryView{}}
		found := false
		for _, g := range groups {
			if g.Name == group {
				found = true
				v.GroupConsumers, v.LastDeliveredID, v.EntriesRead, v.Lag = g.Consumers, g.LastDeliveredID, g.EntriesRead, g.Lag
			}
		}
		if !found {
			return nil, fmt.Errorf("stream %s has no consumer group %q (rtmanager creates it when it starts)", key, group)
		}
		sum, err := cs.sum.Result()
		if err != nil {
			return nil, fmt.Errorf("read the pending summary of group %s on %s: %w", group, key, err)
		}
		v.Pending, v.Lowest, v.Highest = sum.Count, sum.Lower, sum.Higher
		for name, n := range sum.Consumers {
			v.Consumers = append(v.Consumers, consumerView{Name: name, Pending: n})
		}
		sortConsumers(v.Consumers)
		if cs.oldest != nil && sum.Count > 0 {
			ents, err := cs.oldest.Result()
			if err != nil {
				return nil, fmt.Errorf("read the pending entries of group %s on %s: %w", group, key, err)
			}
			for _, e := range ents {
				v.Oldest = append(v.Oldest, pendingEntryView{
					ID: e.ID, Consumer: e.Consumer, IdleMS: e.Idle.Milliseconds(), Deliveries: e.RetryCount,
				})
			}
		}
		out = append(out, shardPending{shard: i, pendingView: v})
	}
	return out, nil
}

// sumPending is the group over all shards: pending and entries read
// summed, the lag summed (unknown, -1, when any shard's is), pending per
// consumer summed, the pending id range of all shards, the consumer count
// of the shard with the most, and the count oldest pending entries of all
// shards by entry id; Shards has each shard's own view.
func sumPending(stream, group string, shards []shardPending, count int64) pendingView {
	v := pendingView{Stream: stream, Group: group, Consumers: []consumerView{}, Oldest: []pendingEntryView{},
		ShardCount: len(shards), Shards: make([]pendingShardView, 0, len(shards))}
	perConsumer := map[string]int64{}
	for _, s := range shards {
		v.Pending += s.Pending
		v.EntriesRead += s.EntriesRead
		switch {
		case s.Lag < 0 || v.Lag < 0:
			v.Lag = -1
		default:
			v.Lag += s.Lag
		}
		v.GroupConsumers = max(v.GroupConsumers, s.GroupConsumers)
		if s.Pending > 0 {
			if v.Lowest == "" || compareIDs(s.Lowest, v.Lowest) < 0 {
				v.Lowest = s.Lowest
			}
			if v.Highest == "" || compareIDs(s.Highest, v.Highest) > 0 {
				v.Highest = s.Highest
			}
		}
		for _, c := range s.Consumers {
			perConsumer[c.Name] += c.Pending
		}
		for _, e := range s.Oldest {
			e.Shard = &s.shard
			v.Oldest = append(v.Oldest, e)
		}
		v.Shards = append(v.Shards, pendingShardView{
			Shard: s.shard, Stream: s.Stream, Pending: s.Pending, Lowest: s.Lowest, Highest: s.Highest,
			Consumers: s.Consumers, GroupConsumers: s.GroupConsumers, LastDeliveredID: s.LastDeliveredID,
			EntriesRead: s.EntriesRead, Lag: s.Lag,
		})
	}
	for name, n := range perConsumer {
		v.Consumers = append(v.Consumers, consumerView{Name: name, Pending: n})
	}
	sortConsumers(v.Consumers)
	sort.SliceStable(v.Oldest, func(i, j int) bool {
		if c := compareIDs(v.Oldest[i].ID, v.Oldest[j].ID); c != 0 {
			return c < 0
		}
		return *v.Oldest[i].Shard < *v.Oldest[j].Shard
	})
	if int64(len(v.Oldest)) > count {
		v.Oldest = v.Oldest[:count]
	}
	return v
}

func sortConsumers(cs []consumerView) {
	sort.Slice(cs, func(i, j int) bool { return cs[i].Name < cs[j].Name })
}
