package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// pipeBatch bounds the commands of one pipeline: with thousands of shards
// a command per shard goes in several round trips rather than one huge one.
const pipeBatch = 512

// perKey queues the commands of each of n shard keys (mk gets the key's
// index) in pipelines of at most pipeBatch keys, runs them and returns what
// mk returned, in key order. Each command carries its own error; on a Redis
// Cluster go-redis sends each node its part of a pipeline, so keys of
// different slots mix freely.
func perKey[T any](ctx context.Context, c redis.UniversalClient, n int, mk func(p redis.Pipeliner, i int) T) []T {
	out := make([]T, 0, n)
	for start := 0; start < n; start += pipeBatch {
		p := c.Pipeline()
		for i := start; i < min(start+pipeBatch, n); i++ {
			out = append(out, mk(p, i))
		}
		_, _ = p.Exec(ctx) // the errors are read from each command
	}
	return out
}

// readAfter is one XREAD BLOCK of streams, each after its id in after; no
// entries is not an error. The streams must be in one slot on a Redis
// Cluster (one key, or a single Redis).
func readAfter(ctx context.Context, c redis.UniversalClient, streams, after []string, block time.Duration) ([]redis.XStream, error) {
	args := append(append(make([]string, 0, 2*len(streams)), streams...), after...)
	res, err := c.XRead(ctx, &redis.XReadArgs{Streams: args, Count: 100, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		what := streams[0]
		if len(streams) > 1 {
			what = fmt.Sprintf("%s … %s (%d keys)", streams[0], streams[len(streams)-1], len(streams))
		}
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	return res, nil
}

// compareIDs orders two stream entry ids (ms-seq) as Redis does: by
// milliseconds, then by sequence. An id that does not parse sorts as 0-0.
func compareIDs(a, b string) int {
	am, as := splitID(a)
	bm, bs := splitID(b)
	if c := cmp.Compare(am, bm); c != 0 {
		return c
	}
	return cmp.Compare(as, bs)
}

func splitID(id string) (ms, seq uint64) {
	m, s, _ := strings.Cut(id, "-")
	ms, _ = strconv.ParseUint(m, 10, 64)
	seq, _ = strconv.ParseUint(s, 10, 64)
	return ms, seq
}
