package api

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Sharding spreads one logical channel over several Redis keys, so that a
// Redis Cluster serves it from several masters. Shard n of every channel
// carries the same hash tag, {<Tag><n>}: one shard's job stream, result
// stream, dead letters and runtime records share one Cluster slot, so a job's
// result, its acknowledgement and its record change stay one atomic script.
// A partition-key value (game_id) always maps to the same shard, Shard(v, S),
// so per-game order holds across shards.
//
// The layout is a property of the whole document, not of a channel: a commit
// writes to several channels at once, and they must agree on S and on the
// tag.
type Sharding struct {
	// Count is S, the number of shards. Default DefaultShardCount.
	Count int `json:"count"`
	// Tag starts each shard's hash tag. Default DefaultShardTag.
	Tag string `json:"tag"`
}

// Defaults of x-redis-shards.
const (
	// DefaultShardCount is one shard: on a single Redis, the channels keep
	// their addresses.
	DefaultShardCount = 1
	// DefaultShardTag makes shard 3's hash tag {rt-3}.
	DefaultShardTag = "rt-"
	// MaxShardCount bounds S: more shards than Cluster slots add nothing.
	MaxShardCount = 16384
	// ShardPlaceholder marks where a sharded address carries the shard's
	// hash tag: runtime:{shard}:stop_jobs is runtime:{rt-3}:stop_jobs in
	// shard 3.
	ShardPlaceholder = "{shard}"
)

func (s *Sharding) setDefaults() error {
	if s.Count == 0 {
		s.Count = DefaultShardCount
	}
	if s.Tag == "" {
		s.Tag = DefaultShardTag
	}
	if s.Count < 1 || s.Count > MaxShardCount {
		return fmt.Errorf("count %d: want 1..%d", s.Count, MaxShardCount)
	}
	if strings.ContainsAny(s.Tag, "{} \t\r\n") {
		return fmt.Errorf("tag %q: no braces or white space", s.Tag)
	}
	return nil
}

// checkShardedAddress refuses a sharded-address that would not put the
// shard's hash tag first in the key: Redis hashes only the first {…}.
func checkShardedAddress(ch *Channel) error {
	sa := ch.Stream.ShardedAddress
	if sa == "" {
		return nil
	}
	i := strings.Index(sa, ShardPlaceholder)
	switch {
	case i < 0:
		return fmt.Errorf("sharded-address %q: no %s", sa, ShardPlaceholder)
	case strings.Count(sa, ShardPlaceholder) > 1:
		return fmt.Errorf("sharded-address %q: more than one %s", sa, ShardPlaceholder)
	case strings.ContainsAny(sa[:i], "{}"):
		return fmt.Errorf("sharded-address %q: a brace before %s would make another hash tag", sa, ShardPlaceholder)
	}
	return nil
}

// Shard is the shard of a partition-key value among n: CRC16 of its bytes
// (the CRC Redis Cluster uses for key slots: XMODEM, polynomial 0x1021,
// initial value 0) modulo n. Unlike a key slot, the whole value is hashed,
// braces included. n < 2 gives 0.
func Shard(value string, n int) int {
	if n < 2 {
		return 0
	}
	return int(CRC16([]byte(value))) % n
}

// CRC16 is CRC-16/XMODEM, Redis Cluster's key hash: CRC16("123456789") is
// 0x31C3.
func CRC16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// Layout is where a deployment's keys are: the shard count and whether the
// sharded addresses are used. Lobby and rtmanager must use the same one.
type Layout struct {
	// Shards is S.
	Shards int
	// Sharded says the keys carry hash tags: always on a Redis Cluster (the
	// plain addresses of a job stream and its result stream are in
	// different slots) and whenever S > 1. A single Redis with S = 1 keeps
	// the plain addresses, as before sharding existed.
	Sharded bool

	tag string
}

// NewLayout is the layout for doc with shards shards (0: the document's
// count) on a Redis Cluster or not.
func NewLayout(doc *Document, shards int, cluster bool) (Layout, error) {
	if shards == 0 {
		shards = doc.Shards.Count
	}
	if shards < 1 || shards > MaxShardCount {
		return Layout{}, fmt.Errorf("shards %d: want 1..%d", shards, MaxShardCount)
	}
	l := Layout{Shards: shards, Sharded: cluster || shards > 1, tag: doc.Shards.Tag}
	if l.Sharded {
		for _, key := range sortedChannelKeys(doc) {
			ch := doc.Channels[key]
			if ch.Stream.ShardedAddress == "" {
				return Layout{}, fmt.Errorf("channel %s has no x-redis-stream sharded-address: it cannot be sharded", key)
			}
		}
	}
	return l, nil
}

// HashTag is shard n's hash tag, braces included ({rt-3}); empty when the
// layout is not sharded.
func (l Layout) HashTag(n int) string {
	if !l.Sharded {
		return ""
	}
	return "{" + l.tag + strconv.Itoa(n) + "}"
}

// Key is ch's stream key in shard n.
func (l Layout) Key(ch *Channel, n int) string {
	if !l.Sharded {
		return ch.Address
	}
	return strings.Replace(ch.Stream.ShardedAddress, ShardPlaceholder, l.HashTag(n), 1)
}

// Keys are ch's stream keys, shard 0 first; one key when not sharded.
func (l Layout) Keys(ch *Channel) []string {
	if !l.Sharded {
		return []string{ch.Address}
	}
	keys := make([]string, l.Shards)
	for n := range keys {
		keys[n] = l.Key(ch, n)
	}
	return keys
}

// ShardOf is the shard of a partition-key value.
func (l Layout) ShardOf(value string) int { return Shard(value, l.Shards) }

// ShardOfKey is the shard whose key of ch is key, or an error when key is
// none of them.
func (l Layout) ShardOfKey(ch *Channel, key string) (int, error) {
	if !l.Sharded {
		if key == ch.Address {
			return 0, nil
		}
		return 0, fmt.Errorf("key %q is not channel %s's %q", key, ch.Key, ch.Address)
	}
	pre, post, _ := strings.Cut(ch.Stream.ShardedAddress, ShardPlaceholder)
	mid, ok := strings.CutPrefix(key, pre+"{"+l.tag)
	if ok {
		mid, ok = strings.CutSuffix(mid, "}"+post)
	}
	if ok {
		if n, err := strconv.Atoi(mid); err == nil && n >= 0 && n < l.Shards && strconv.Itoa(n) == mid {
			return n, nil
		}
	}
	return 0, errors.New("key " + strconv.Quote(key) + " is no shard of channel " + ch.Key)
}

func sortedChannelKeys(d *Document) []string {
	keys := make([]string, 0, len(d.Channels))
	for k := range d.Channels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
