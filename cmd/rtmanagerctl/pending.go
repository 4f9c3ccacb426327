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
	group := fs.String("group", defaultGroup, "consumer group of "+jobsKey)
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
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	exists, err := c.Exists(ctx, jobsKey).Result()
	if err != nil {
		return fmt.Errorf("look up %s: %w", jobsKey, err)
	}
	if exists == 0 {
		return fmt.Errorf("stream %s does not exist: no job was sent and rtmanager never started", jobsKey)
	}
	groups, err := c.XInfoGroups(ctx, jobsKey).Result()
	if err != nil {
		return fmt.Errorf("read the groups of %s: %w", jobsKey, err)
	}
	v := pendingView{Stream: jobsKey, Group: *group, Consumers: []consumerView{}, Oldest: []pendingEntryView{}}
	found := false
	for _, g := range groups {
		if g.Name == *group {
			found = true
			v.GroupConsumers, v.LastDeliveredID, v.EntriesRead, v.Lag = g.Consumers, g.LastDeliveredID, g.EntriesRead, g.Lag
		}
	}
	if !found {
		return fmt.Errorf("stream %s has no consumer group %q (rtmanager creates it when it starts)", jobsKey, *group)
	}
	sum, err := c.XPending(ctx, jobsKey, *group).Result()
	if err != nil {
		return fmt.Errorf("read the pending summary of group %s: %w", *group, err)
	}
	v.Pending, v.Lowest, v.Highest = sum.Count, sum.Lower, sum.Higher
	for name, n := range sum.Consumers {
		v.Consumers = append(v.Consumers, consumerView{Name: name, Pending: n})
	}
	sort.Slice(v.Consumers, func(i, j int) bool { return v.Consumers[i].Name < v.Consumers[j].Name })
	if *count > 0 && sum.Count > 0 {
		ents, err := c.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: jobsKey, Group: *group, Start: "-", End: "+", Count: *count,
		}).Result()
		if err != nil {
			return fmt.Errorf("read the pending entries of group %s: %w", *group, err)
		}
		for _, e := range ents {
			v.Oldest = append(v.Oldest, pendingEntryView{
				ID: e.ID, Consumer: e.Consumer, IdleMS: e.Idle.Milliseconds(), Deliveries: e.RetryCount,
			})
		}
	}
	if a.g.json {
		return writeJSON(a.stdout, v)
	}
	return printPending(a.stdout, v)
}
