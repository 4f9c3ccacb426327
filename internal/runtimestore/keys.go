package runtimestore

import (
	"strings"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/stopruntime"
)

// keys names every key of the store, in both layouts (docs/persistence.md):
//
//	not sharded: record  <prefix>runtime:{<game_id>}    log <prefix>operations
//	sharded:     record  <prefix>{rt-N}:runtime:<game_id> log <prefix>{rt-N}:operations
//
// where N is the game's shard (api.Layout.ShardOf). In the sharded layout
// the shard's hash tag comes first, so a game's record, its shard's
// operation log and its shard's streams share one Cluster slot and one
// script may write them all.
type keys struct {
	prefix string
	layout api.Layout
	ops    []string // operations(n) of every shard, built once
}

func newKeys(prefix string, layout api.Layout) keys {
	k := keys{prefix: prefix, layout: layout}
	k.ops = k.allOperations()
	return k
}

// operationsRef points at shard n's log key, for a command argument
// (go-redis writes a *string as its value; boxing the string itself would
// allocate on every call).
func (k keys) operationsRef(n int) *string {
	if n < len(k.ops) {
		return &k.ops[n]
	}
	key := k.operations(n)
	return &key
}

// shard is the game's shard; 0 when not sharded.
func (k keys) shard(gameID string) int {
	if !k.layout.Sharded {
		return 0
	}
	return k.layout.ShardOf(gameID)
}

// record is the key of a game's record. The id must be valid
// (stopruntime.ValidateGameID): it holds no brace, so in the unsharded
// layout the braces around it are its hash tag, and in the sharded layout
// the shard's tag stays the first one.
func (k keys) record(gameID string) string {
	if !k.layout.Sharded {
		return k.prefix + "runtime:{" + gameID + "}"
	}
	return k.prefix + k.layout.HashTag(k.layout.ShardOf(gameID)) + ":runtime:" + gameID
}

// operations is the key of shard n's operation log.
func (k keys) operations(n int) string {
	if n < len(k.ops) {
		return k.ops[n]
	}
	if !k.layout.Sharded {
		return k.prefix + "operations"
	}
	return k.prefix + k.layout.HashTag(n) + ":operations"
}

// allOperations are the operation logs of every shard, shard 0 first.
func (k keys) allOperations() []string {
	if !k.layout.Sharded {
		return []string{k.operations(0)}
	}
	out := make([]string, k.layout.Shards)
	for n := range out {
		out[n] = k.operations(n)
	}
	return out
}

// recordPattern is the SCAN MATCH pattern of the record keys (braces are
// no glob characters).
func (k keys) recordPattern() string {
	if !k.layout.Sharded {
		return k.prefix + "runtime:{*}"
	}
	return k.prefix + "{*}:runtime:*"
}

// gameIDOf extracts the game id from a record key; false when the key is
// not the record key of a valid id in this layout (a key of another shard
// count, say, which the store would never address).
func (k keys) gameIDOf(key string) (string, bool) {
	var id string
	if !k.layout.Sharded {
		rest, ok := strings.CutPrefix(key, k.prefix+"runtime:{")
		if !ok {
			return "", false
		}
		if id, ok = strings.CutSuffix(rest, "}"); !ok {
			return "", false
		}
	} else {
		rest, ok := strings.CutPrefix(key, k.prefix+"{")
		i := strings.IndexByte(rest, '}')
		if !ok || i < 0 {
			return "", false
		}
		if id, ok = strings.CutPrefix(rest[i+1:], ":runtime:"); !ok {
			return "", false
		}
	}
	if !stopruntime.ValidGameID(id) || k.record(id) != key {
		return "", false
	}
	return id, true
}

// hashTag is what Redis Cluster hashes of key: the text between the first
// '{' and the next '}' when that is not empty, else the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}
