package console

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/deadletters"
	"galaxy/rtmanager/internal/runtimestore"
)

// Every Redis key the console reads is named here and nowhere else. Stream
// keys come from the contract through the key layout (api.Layout: one key
// per channel, or in a sharded layout one per shard, shard 0 first); record
// and log keys from runtimestore with the same layout and
// Options.KeyPrefix. A game's keys are those of its shard
// (api.Layout.ShardOf).

// jobStream is one job stream of the contract: a channel read through a
// consumer group with a dead-letter channel.
type jobStream struct {
	// Name is the channel key (stopJobs), used in URLs.
	Name string
	// Operation is the channel's operation word: stop or start (the
	// operation label of rtmanager_job_results_total).
	Operation string
	// Jobs and Dead name the stream and its dead letters on the pages: the
	// key, or in a sharded layout the sharded address with {shard}.
	Jobs, Dead string
	// Address is the channel's address: the stream label of rtmanager's
	// metrics, whatever the shard count.
	Address string
	// JobKeys and DeadKeys are the keys of every shard, shard 0 first.
	JobKeys, DeadKeys []string
	Group             string
}

// replayPair is where Replay moves shard n's dead letters: the job stream
// of the same shard, so a replay stays in one Cluster slot.
func (s jobStream) replayPair(n int) deadletters.Pair {
	return deadletters.Pair{Dead: s.DeadKeys[n], Jobs: s.JobKeys[n]}
}

// keys are the console's keys.
type keys struct {
	layout  api.Layout
	store   *runtimestore.Store
	streams []jobStream
	results []string
	events  []string
	opLogs  []string // the operation log of every shard
	// operations is shard 0's operation log: the only one when not
	// sharded.
	operations string
}

// newKeys reads the job streams from the contract. group overrides the
// contract's consumer group when set (rtmanager --group).
func newKeys(doc *api.Document, group string, layout api.Layout, store *runtimestore.Store) (keys, error) {
	k := keys{layout: layout, store: store, opLogs: store.OperationsKeys(), operations: store.OperationsKey()}
	if layout.Shards < 1 {
		// The zero Layout: the plain keys, one shard.
		k.layout = api.Layout{Shards: 1}
	}
	results, ok := doc.ChannelByAddress(runtimejobs.JobResultsChannelPath)
	if !ok {
		return keys{}, fmt.Errorf("the contract has no channel at %s", runtimejobs.JobResultsChannelPath)
	}
	events, ok := doc.ChannelByAddress(runtimejobs.RuntimeEventsChannelPath)
	if !ok {
		return keys{}, fmt.Errorf("the contract has no channel at %s", runtimejobs.RuntimeEventsChannelPath)
	}
	k.results, k.events = k.layout.Keys(results), k.layout.Keys(events)
	if len(k.opLogs) != len(k.results) {
		return keys{}, fmt.Errorf("the store has %d operation logs for %d shards", len(k.opLogs), len(k.results))
	}
	for _, ch := range doc.Channels {
		if ch.Stream.DeadLetter == "" || ch.Stream.Group == "" {
			continue
		}
		dead, ok := doc.Channels[ch.Stream.DeadLetter]
		if !ok {
			return keys{}, fmt.Errorf("channel %s: dead-letter channel %s missing", ch.Key, ch.Stream.DeadLetter)
		}
		g := ch.Stream.Group
		if group != "" {
			g = group
		}
		s := jobStream{
			Name: ch.Key, Operation: strings.TrimSuffix(ch.Key, "Jobs"),
			Jobs: ch.Address, Dead: dead.Address, Group: g, Address: ch.Address,
			JobKeys: k.layout.Keys(ch), DeadKeys: k.layout.Keys(dead),
		}
		if k.layout.Sharded {
			s.Jobs, s.Dead = ch.Stream.ShardedAddress, dead.Stream.ShardedAddress
		}
		k.streams = append(k.streams, s)
	}
	if len(k.streams) == 0 {
		return keys{}, fmt.Errorf("the contract has no job stream (a channel with a group and a dead-letter channel)")
	}
	// Stop jobs first: they are the older, busier stream.
	sort.Slice(k.streams, func(i, j int) bool { return k.streams[i].Name > k.streams[j].Name })
	return k, nil
}

// shards is S: how many keys each channel has.
func (k keys) shards() int { return len(k.results) }

// shardOf is a game's shard (0 when not sharded).
func (k keys) shardOf(gameID string) int {
	if !k.layout.Sharded {
		return 0
	}
	return k.layout.ShardOf(gameID)
}

// stream returns the job stream named name (a channel key).
func (k keys) stream(name string) (jobStream, bool) {
	for _, s := range k.streams {
		if s.Name == name {
			return s, true
		}
	}
	return jobStream{}, false
}

// record is the runtime record hash of a game.
func (k keys) record(gameID string) string { return k.store.RecordKey(gameID) }

// shardRef names entry id of shard n where ids must be told apart across
// shards (a form's value, a page's link): "n/id" in a sharded layout, the
// bare id otherwise.
func (k keys) shardRef(n int, id string) string {
	if !k.layout.Sharded {
		return id
	}
	return strconv.Itoa(n) + "/" + id
}

// parseShardRef reads shardRef's form back; a bare id is shard 0's. The id
// is one an entry can have: valid, and not 0-0, which Redis never gives an
// entry and which as an exclusive bound ("(0-0") is an error.
func (k keys) parseShardRef(ref string) (int, string, bool) {
	n, id := 0, ref
	if ns, rest, found := strings.Cut(ref, "/"); found {
		var err error
		if n, err = strconv.Atoi(ns); err != nil || n < 0 || n >= k.shards() || strconv.Itoa(n) != ns {
			return 0, "", false
		}
		id = rest
	} else if k.layout.Sharded && k.shards() != 1 {
		return 0, "", false
	}
	if !validEntryID(id) || isZeroID(id) {
		return 0, "", false
	}
	return n, id, true
}

// isZeroID reports whether id is 0-0 in any spelling (00-0).
func isZeroID(id string) bool {
	return strings.Trim(id, "0") == "-"
}
