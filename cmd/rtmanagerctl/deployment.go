package main

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/redisclient"
)

// deployment is what a command talks to: the Redis of --redis-url, the
// contract and the key layout. The layout is worked out here and nowhere
// else, as rtmanager's broker does (--shards; a Redis Cluster always takes
// the sharded keys), so every command of one invocation agrees on it.
type deployment struct {
	c      redis.UniversalClient
	doc    *api.Document
	layout api.Layout
}

// open connects (a.connect) and works out the layout.
func (a *app) open(ctx context.Context) (*deployment, error) {
	doc, err := api.Load()
	if err != nil {
		return nil, fmt.Errorf("load contract: %w", err)
	}
	// A bad --shards is bad usage whether or not Redis answers.
	if _, err := api.NewLayout(doc, a.g.shards, false); err != nil {
		return nil, usagef("--shards: %v", err)
	}
	c, err := a.connect(ctx)
	if err != nil {
		return nil, err
	}
	layout, err := api.NewLayout(doc, a.g.shards, redisclient.IsCluster(c))
	if err != nil {
		_ = c.Close()
		return nil, usagef("--shards: %v", err)
	}
	return &deployment{c: c, doc: doc, layout: layout}, nil
}

func (d *deployment) Close() error { return d.c.Close() }

// channel is the contract's channel at address (a runtimejobs.*ChannelPath).
func (d *deployment) channel(address string) (*api.Channel, error) {
	ch, ok := d.doc.ChannelByAddress(address)
	if !ok {
		return nil, fmt.Errorf("the contract has no channel %s", address)
	}
	return ch, nil
}

// keys are the stream keys of the channel at address, shard 0 first: the
// address itself when the layout is not sharded.
func (d *deployment) keys(address string) ([]string, error) {
	ch, err := d.channel(address)
	if err != nil {
		return nil, err
	}
	return d.layout.Keys(ch), nil
}

// shardOf is what output shows as the shard of the n-th key of a channel:
// nil when the layout is not sharded, so single-Redis output stays as it
// was before sharding.
func (d *deployment) shardOf(n int) *int {
	if !d.layout.Sharded {
		return nil
	}
	return &n
}
