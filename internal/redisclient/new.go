package redisclient

import (
	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/redisurl"
)

// Tuning is what a binary sets on top of its --redis-url.
type Tuning struct {
	// MinPoolSize raises the pool size (per node on a cluster) to at least
	// this; 0 keeps the URL's or go-redis's.
	MinPoolSize int
	// Protocol is the RESP version; 0 keeps the URL's or go-redis's.
	Protocol int
}

// New builds a client from a --redis-url: a *redis.Client for redis:// and
// rediss://, a *redis.ClusterClient for redis+cluster:// and
// rediss+cluster:// (see FollowFailover for what it adds). Its errors
// never contain the password.
func New(rawURL string, t Tuning) (redis.UniversalClient, error) {
	if redisurl.IsCluster(rawURL) {
		o, err := redisurl.ParseCluster(rawURL)
		if err != nil {
			return nil, err
		}
		o.PoolSize = max(o.PoolSize, t.MinPoolSize)
		if t.Protocol != 0 {
			o.Protocol = t.Protocol
		}
		if o.ClusterStateReloadInterval == 0 {
			o.ClusterStateReloadInterval = SlotMapMaxAge
		}
		c := redis.NewClusterClient(o)
		FollowFailover(c)
		return c, nil
	}
	o, err := redisurl.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	o.PoolSize = max(o.PoolSize, t.MinPoolSize)
	if t.Protocol != 0 {
		o.Protocol = t.Protocol
	}
	return redis.NewClient(o), nil
}
