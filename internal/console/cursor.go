package console

import (
	"sort"
	"strings"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/redisstream"
)

// Entry ids are unique within one stream only: in a sharded layout two
// shards' result streams may hold the same id. Entries read from several
// shards are kept as (shard, id) and ordered by id, then shard; where a
// page goes on from what it read (the live stream's ?after=), it names one
// id per shard: a cursor.

// shardMsg is an entry of shard n's stream.
type shardMsg struct {
	n int
	m redis.XMessage
}

// olderMsg orders entries of several shards: by id, then by shard.
func olderMsg(a, b shardMsg) bool {
	if a.m.ID != b.m.ID {
		return newer(b.m.ID, a.m.ID)
	}
	return a.n < b.n
}

// mergeNewestFirst merges the shards' entries, each list newest first,
// into one list newest first.
func mergeNewestFirst(per [][]redis.XMessage) []shardMsg {
	var out []shardMsg
	for n, msgs := range per {
		for _, m := range msgs {
			out = append(out, shardMsg{n, m})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return olderMsg(out[j], out[i]) })
	return out
}

// cursor is where a read of every shard's stream goes on: the last id read
// on each shard, shard 0 first; "0-0" for a shard with nothing read.
type cursor []string

// String is the cursor in a URL: the ids joined by commas (one id, as
// before sharding, with one shard).
func (c cursor) String() string { return strings.Join(c, ",") }

// readCursor reads a cursor of shards ids; false when it is not one.
func readCursor(s string, shards int) (cursor, bool) {
	ids := strings.Split(s, ",")
	if len(ids) != shards {
		return nil, false
	}
	for _, id := range ids {
		if !validEntryID(id) {
			return nil, false
		}
	}
	return ids, true
}

// startCursor is a cursor before everything.
func startCursor(shards int) cursor {
	c := make(cursor, shards)
	for i := range c {
		c[i] = "0-0"
	}
	return c
}

// validEntryID reports whether id is a stream entry id Redis takes. A
// part beyond 2^64-1 passed a digits-only check and came back from Redis
// as an error (a 502 for what is the caller's mistake).
func validEntryID(id string) bool {
	_, ok := redisstream.ParseEntryID(id)
	return ok
}
