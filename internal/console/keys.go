package console

import (
	"fmt"
	"sort"
	"strings"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/deadletters"
	"galaxy/rtmanager/internal/runtimestore"
)

// Every Redis key the console reads is named here and nowhere else, so a
// change of key layout (Redis Cluster shards, whose keys share a hash tag)
// is one file's change. Stream keys come from the contract (channel
// addresses and their x-redis-stream extension); record and log keys from
// runtimestore (RecordKey, OperationsKey) with Options.KeyPrefix.

// jobStream is one job stream of the contract: a channel read through a
// consumer group with a dead-letter channel.
type jobStream struct {
	// Name is the channel key (stopJobs), used in URLs.
	Name string
	// Title is the channel's operation word: stop or start (the
	// operation label of rtmanager_job_results_total).
	Operation string
	Jobs      string // stream key
	Dead      string // its dead-letter stream key
	Group     string
}

// replayPair is where Replay moves this stream's dead letters.
func (s jobStream) replayPair() deadletters.Pair {
	return deadletters.Pair{Dead: s.Dead, Jobs: s.Jobs}
}

// keys are the console's keys.
type keys struct {
	streams    []jobStream
	results    string
	events     string
	operations string
	// Record keys are recordHead + game id + recordTail.
	recordHead, recordTail string
}

// newKeys reads the job streams from the contract. group overrides the
// contract's consumer group when set (rtmanager --group).
func newKeys(doc *api.Document, group string, store *runtimestore.Store) (keys, error) {
	// A game id never holds a NUL (the contract's pattern), so it splits
	// the record key into what goes before and after the id.
	head, tail, _ := strings.Cut(store.RecordKey("\x00"), "\x00")
	k := keys{
		results:    runtimejobs.JobResultsChannelPath,
		events:     runtimejobs.RuntimeEventsChannelPath,
		operations: store.OperationsKey(),
		recordHead: head, recordTail: tail,
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
		k.streams = append(k.streams, jobStream{
			Name: ch.Key, Operation: strings.TrimSuffix(ch.Key, "Jobs"),
			Jobs: ch.Address, Dead: dead.Address, Group: g,
		})
	}
	if len(k.streams) == 0 {
		return keys{}, fmt.Errorf("the contract has no job stream (a channel with a group and a dead-letter channel)")
	}
	// Stop jobs first: they are the older, busier stream.
	sort.Slice(k.streams, func(i, j int) bool { return k.streams[i].Name > k.streams[j].Name })
	return k, nil
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
func (k keys) record(gameID string) string { return k.recordHead + gameID + k.recordTail }

// recordPattern matches every record key (SCAN MATCH).
func (k keys) recordPattern() string { return k.recordHead + "*" + k.recordTail }

// gameOf returns the game id of a record key.
func (k keys) gameOf(key string) (string, bool) {
	s, ok := strings.CutPrefix(key, k.recordHead)
	if !ok {
		return "", false
	}
	return strings.CutSuffix(s, k.recordTail)
}
