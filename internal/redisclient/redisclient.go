// Package redisclient is what rtmanager's Redis users (the broker and the
// runtime store) need to know about a go-redis client, written once:
// whether it is a Cluster client, and the EVAL fallback of a script Redis
// does not hold.
package redisclient

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"
)

// IsCluster reports whether c is a Redis Cluster client, where the keys of
// one script or one MULTI must share a slot.
func IsCluster(c redis.UniversalClient) bool {
	_, ok := c.(*redis.ClusterClient)
	return ok
}

// IsNoScript reports whether err is Redis saying it does not hold the
// script an EVALSHA named (NOSCRIPT).
func IsNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || redis.HasErrorPrefix(err, "NOSCRIPT"))
}

// EvalIfNoScript takes cmd, the reply to args: an EVALSHA of the script src
// built by hand ("evalsha", sha, numkeys, keys and args…, so that go-redis
// does not copy every argument again). If Redis did not hold the script
// (the first call after a start, a Redis restart or SCRIPT FLUSH), it sends
// args again as EVAL of src, which also loads it, and returns that reply;
// otherwise cmd. args is changed.
func EvalIfNoScript(ctx context.Context, c redis.UniversalClient, cmd *redis.Cmd, args []any, src string) *redis.Cmd {
	if !IsNoScript(cmd.Err()) {
		return cmd
	}
	args[0], args[1] = "eval", src
	return c.Do(ctx, args...)
}
