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

func (c *Console) timeline(w http.ResponseWriter, r *http.Request, jobID string) {
	evs, err := c.jobEvents(r.Context(), jobID)
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "read the job's timeline", err)
		return
	}
	c.render(w, r, http.StatusOK, "timeline", timelinePage{JobID: jobID, Events: evs, Scanned: followScan, Found: len(evs) > 0})
}

// jobEvents reads, in one pipelined round trip, the job's entry and its
// pending state on every job stream; then the dead letters, results and
// operation-log entries of the job among the followScan entries from its id
// on (bounded chunked walks, scan.go).
func (c *Console) jobEvents(ctx context.Context, jobID string) ([]timelineEvent, error) {
	p := c.rdb.Pipeline()
	type perStream struct {
		s       jobStream
		entry   *redis.XMessageSliceCmd
		pending *redis.XPendingExtCmd
	}
	var ps []perStream
	for _, s := range c.keys.streams {
		ps = append(ps, perStream{
			s:       s,
			entry:   p.XRangeN(ctx, s.Jobs, jobID, jobID, 1),
			pending: p.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: s.Jobs, Group: s.Group, Start: jobID, End: jobID, Count: 1}),
		})
	}
	_, _ = p.Exec(ctx) // a missing group is an error of its command alone
	var evs []timelineEvent
	for _, x := range ps {
		if err := x.entry.Err(); err != nil {
			return nil, fmt.Errorf("read %s: %w", x.s.Jobs, err)
		}
		if m := x.entry.Val(); len(m) == 1 {
			evs = append(evs, timelineEvent{AtMS: idMS(jobID), Kind: "entry", Stream: x.s.Jobs, ID: jobID, Fields: fieldsOf(m[0].Values)})
		}
		if pe := x.pending.Val(); x.pending.Err() == nil && len(pe) == 1 {
			evs = append(evs, timelineEvent{
				AtMS: time.Now().Add(-pe[0].Idle).UnixMilli(), Kind: "pending", Stream: x.s.Jobs, ID: jobID,
				Fields: []deadletters.Field{
					{Name: "consumer", Value: pe[0].Consumer},
					{Name: "deliveries", Value: strconv.FormatInt(pe[0].RetryCount, 10)},
					{Name: "idle", Value: fmtAgo(pe[0].Idle)},
				},
			})
		}
	}
	follow := func(stream string, want int, match func(redis.XMessage) bool) ([]redis.XMessage, error) {
		sc, err := c.scan(ctx, scan{stream: stream, from: jobID, budget: followScan, want: want, match: match})
		return sc.matches, err
	}
	for _, x := range ps {
		dead, err := follow(x.s.Dead, 1, func(m redis.XMessage) bool { return str(m.Values, redisstream.FieldOriginalID) == jobID })
		if err != nil {
			return nil, err
		}
		for _, m := range dead {
			dl := redisstream.ReadDeadLetter(m.Values)
			evs = append(evs, timelineEvent{AtMS: dl.DeadAtMS, Kind: "dead letter", Stream: x.s.Dead, ID: m.ID, Fields: fieldsOf(m.Values)})
		}
	}
	// Start and stop job ids come from different streams and may be equal:
	// up to one result per job stream.
	results, err := follow(c.keys.results, len(c.keys.streams), func(m redis.XMessage) bool { return str(m.Values, "job_id") == jobID })
	if err != nil {
		return nil, err
	}
	for _, m := range results {
		at, _ := strconv.ParseInt(str(m.Values, "completed_at_ms"), 10, 64)
		evs = append(evs, timelineEvent{AtMS: at, Kind: "result", Stream: c.keys.results, ID: m.ID, Fields: fieldsOf(m.Values)})
	}
	ops, err := follow(c.keys.operations, 20, func(m redis.XMessage) bool { return str(m.Values, "source_ref") == jobID })
	if err != nil {
		return nil, err
	}
	for _, m := range ops {
		at, _ := strconv.ParseInt(str(m.Values, "finished_at_ms"), 10, 64)
		evs = append(evs, timelineEvent{AtMS: at, Kind: "operation", Stream: c.keys.operations, ID: m.ID, Fields: fieldsOf(m.Values)})
	}
	sort.SliceStable(evs, func(i, j int) bool { return evs[i].AtMS < evs[j].AtMS })
	return evs, nil
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
