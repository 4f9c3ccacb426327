package console

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/deadletters"
	"galaxy/rtmanager/internal/redisstream"
)

// followScan bounds how many entries after a job's id the timeline reads on
// the results, dead-letter and operation streams to find what followed it
// (those streams are not indexed by job id).
const followScan = 2000

type timelinePage struct {
	JobID   string
	Events  []timelineEvent
	Scanned int
	Found   bool
}

// timelineEvent is one thing that happened to a job.
type timelineEvent struct {
	AtMS   int64
	Kind   string // entry, pending, result, dead letter, operation
	Stream string
	ID     string
	Fields []deadletters.Field
}

func (c *Console) timeline(w http.ResponseWriter, r *http.Request, ref string) {
	shards, jobID, ok := c.timelineShards(ref)
	if !ok {
		c.render(w, r, http.StatusBadRequest, "error", "not a job id of this layout: "+ref)
		return
	}
	evs, scanned, err := c.jobEvents(r.Context(), jobID, shards)
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "read the job's timeline", err)
		return
	}
	c.render(w, r, http.StatusOK, "timeline", timelinePage{JobID: jobID, Events: evs, Scanned: scanned, Found: len(evs) > 0})
}

// timelineShards are the shards a timeline search reads: the one a
// reference names (n/id), or every shard for a bare id (job ids are unique
// per stream only, so a bare id may find one job on each of several
// shards; the timeline lists them all, each event with its stream key).
func (c *Console) timelineShards(ref string) ([]int, string, bool) {
	if strings.Contains(ref, "/") {
		n, id, ok := c.keys.parseShardRef(ref)
		return []int{n}, id, ok
	}
	all := make([]int, c.keys.shards())
	for n := range all {
		all[n] = n
	}
	return all, ref, true
}

// jobEvents reads, in one pipelined round trip, the job's entry and its
// pending state on every job stream of the given shards; then the dead
// letters, results and operation-log entries of the job among the
// followScan entries from its id on (bounded chunked walks, scan.go), on
// the shards where the job was found (on each shard with a share of
// followScan when it was found on none: its entry may be trimmed).
// It returns the events and how many entries of each stream it searched.
func (c *Console) jobEvents(ctx context.Context, jobID string, shards []int) ([]timelineEvent, int, error) {
	p := c.rdb.Pipeline()
	type perStream struct {
		s       jobStream
		n       int
		entry   *redis.XMessageSliceCmd
		pending *redis.XPendingExtCmd
	}
	var ps []perStream
	for _, n := range shards {
		for _, s := range c.keys.streams {
			ps = append(ps, perStream{
				s: s, n: n,
				entry:   p.XRangeN(ctx, s.JobKeys[n], jobID, jobID, 1),
				pending: p.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: s.JobKeys[n], Group: s.Group, Start: jobID, End: jobID, Count: 1}),
			})
		}
	}
	_, _ = p.Exec(ctx) // a missing group is an error of its command alone
	var evs []timelineEvent
	found := map[int]bool{}
	for _, x := range ps {
		key := x.s.JobKeys[x.n]
		if err := x.entry.Err(); err != nil {
			return nil, 0, fmt.Errorf("read %s: %w", key, err)
		}
		if m := x.entry.Val(); len(m) == 1 {
			found[x.n] = true
			evs = append(evs, timelineEvent{AtMS: idMS(jobID), Kind: "entry", Stream: key, ID: jobID, Fields: fieldsOf(m[0].Values)})
		}
		if pe := x.pending.Val(); x.pending.Err() == nil && len(pe) == 1 {
			found[x.n] = true
			evs = append(evs, timelineEvent{
				AtMS: time.Now().Add(-pe[0].Idle).UnixMilli(), Kind: "pending", Stream: key, ID: jobID,
				Fields: []deadletters.Field{
					{Name: "consumer", Value: pe[0].Consumer},
					{Name: "deliveries", Value: strconv.FormatInt(pe[0].RetryCount, 10)},
					{Name: "idle", Value: fmtAgo(pe[0].Idle)},
				},
			})
		}
	}
	follows, budget := shards, followScan
	if len(found) > 0 {
		follows = follows[:0:0]
		for _, n := range shards {
			if found[n] {
				follows = append(follows, n)
			}
		}
	} else if len(shards) > 1 {
		budget = max(scanChunk, followScan/len(shards))
	}
	follow := func(stream string, want int, match func(redis.XMessage) bool) ([]redis.XMessage, error) {
		sc, err := c.scan(ctx, scan{stream: stream, from: jobID, budget: budget, want: want, match: match})
		return sc.matches, err
	}
	for _, n := range follows {
		for _, s := range c.keys.streams {
			dead, err := follow(s.DeadKeys[n], 1, func(m redis.XMessage) bool { return str(m.Values, redisstream.FieldOriginalID) == jobID })
			if err != nil {
				return nil, 0, err
			}
			for _, m := range dead {
				dl := redisstream.ReadDeadLetter(m.Values)
				evs = append(evs, timelineEvent{AtMS: dl.DeadAtMS, Kind: "dead letter", Stream: s.DeadKeys[n], ID: m.ID, Fields: fieldsOf(m.Values)})
			}
		}
		// Start and stop job ids come from different streams and may be
		// equal: up to one result per job stream.
		results, err := follow(c.keys.results[n], len(c.keys.streams), func(m redis.XMessage) bool { return str(m.Values, "job_id") == jobID })
		if err != nil {
			return nil, 0, err
		}
		for _, m := range results {
			at, _ := strconv.ParseInt(str(m.Values, "completed_at_ms"), 10, 64)
			evs = append(evs, timelineEvent{AtMS: at, Kind: "result", Stream: c.keys.results[n], ID: m.ID, Fields: fieldsOf(m.Values)})
		}
		ops, err := follow(c.keys.opLogs[n], 20, func(m redis.XMessage) bool { return str(m.Values, "source_ref") == jobID })
		if err != nil {
			return nil, 0, err
		}
		for _, m := range ops {
			at, _ := strconv.ParseInt(str(m.Values, "finished_at_ms"), 10, 64)
			evs = append(evs, timelineEvent{AtMS: at, Kind: "operation", Stream: c.keys.opLogs[n], ID: m.ID, Fields: fieldsOf(m.Values)})
		}
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].AtMS < evs[j].AtMS })
	return evs, budget, nil
}

// fieldsOf lists an entry's fields by name.
func fieldsOf(values map[string]any) []deadletters.Field {
	out := make([]deadletters.Field, 0, len(values))
	for k, v := range values {
		s, _ := v.(string)
		out = append(out, deadletters.Field{Name: k, Value: s})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func str(values map[string]any, k string) string {
	s, _ := values[k].(string)
	return s
}

// idMS is the milliseconds part of an entry id.
func idMS(id string) int64 {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return n
}
