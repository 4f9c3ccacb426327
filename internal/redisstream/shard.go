package redisstream

import (
	"strconv"
	"sync"
)

// Shards (api.Layout). With S > 1, or on a Redis Cluster, a logical
// channel is S stream keys, shard n's keys carrying the hash tag {rt-n}, so
// one shard's job stream, result stream, dead letters and group record
// share one Cluster slot. A channel's reader serves all S keys: one read
// loop over every key on a single Redis (one XREADGROUP names them all),
// one loop per key on a Cluster (a read naming keys of several slots is
// refused with CROSSSLOT). Everything Redis keeps per stream — the
// consumer group, its pending entries, claims, the group record
// (groupgone.go) — is kept per shard; the partition-key queue, the workers
// and the prefetch stay per channel. A partition-key value always maps to
// one shard, so per-key order holds.
//
// A write made while an entry is handled (its result, its dead letter) goes
// to the entry's shard: the same slot, so it stays in the entry's one
// commit script with the ownership check. A Publish outside a handler goes
// to the shard of the message's partition-key value.

// shard is one stream key of a channel. The fields after key are the
// reader's, under r.mu.
type shard struct {
	n   int
	key string
	// ref tells held entries of different shards apart (two streams can
	// hold the same id): the entry id followed by ref keys keyQueue.held.
	// Empty when the layout is not sharded, so ids alone key it as before.
	ref string

	lastID   string      // last entry id read as new
	epoch    int64       // the group's epoch when last created or found (groupgone.go)
	answered answeredIDs // lately committed ids (groupgone.go)
	readErr  error
	held     int    // entries held from this shard
	tailFrom string // group-less channels: the last entry id when subscribed
}

func newShards(ci *channelInfo, sharded bool) []*shard {
	out := make([]*shard, len(ci.keys))
	for n, k := range ci.keys {
		out[n] = &shard{n: n, key: k}
		if sharded {
			out[n].ref = "@" + strconv.Itoa(n)
		}
	}
	return out
}

// keyIn is the channel's stream key in shard n: a channel with one key
// (not sharded, or outside the contract) has it in every shard.
func (ci *channelInfo) keyIn(n int) string {
	if len(ci.keys) == 1 {
		return ci.keys[0]
	}
	return ci.keys[n]
}

// ref keys d in keyQueue.held.
func (d *Delivery) ref() string {
	if d.sh == nil || d.sh.ref == "" {
		return d.id
	}
	return d.id + d.sh.ref
}

// readGroups splits the shards into the sets one read loop serves.
func (r *reader) readGroups() [][]*shard {
	if !r.b.cluster {
		return [][]*shard{r.shards}
	}
	out := make([][]*shard, len(r.shards))
	for i, sh := range r.shards {
		out[i] = []*shard{sh}
	}
	return out
}

// shardCount is S for this channel (1 for a reader made in a test).
func (r *reader) shardCount() int {
	return max(1, len(r.shards))
}

// waker wakes every read loop of a reader at once (a channel with a buffer
// of one would wake one of several). A loop takes wait() before it checks
// whether it may read, so no signal is lost.
type waker struct {
	mu sync.Mutex
	ch chan struct{}
}

func (w *waker) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

func (w *waker) signal() {
	w.mu.Lock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
	w.mu.Unlock()
}
