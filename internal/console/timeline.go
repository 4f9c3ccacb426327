package console

import (
	"context"
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
	Scanned int64
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
// pending state on every job stream, and the results, dead letters and
// operation-log entries among the followScan entries from its id on.
func (c *Console) jobEvents(ctx context.Context, jobID string) ([]timelineEvent, error) {
	p := c.rdb.Pipeline()
	type perStream struct {
		s       jobStream
		entry   *redis.XMessageSliceCmd
		pending *redis.XPendingExtCmd
		dead    *redis.XMessageSliceCmd
	}
	var ps []perStream
	for _, s := range c.keys.streams {
		ps = append(ps, perStream{
			s:       s,
			entry:   p.XRangeN(ctx, s.Jobs, jobID, jobID, 1),
			pending: p.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: s.Jobs, Group: s.Group, Start: jobID, End: jobID, Count: 1}),
			dead:    p.XRangeN(ctx, s.Dead, jobID, "+", followScan),
		})
	}
	results := p.XRangeN(ctx, c.keys.results, jobID, "+", followScan)
	ops := p.XRangeN(ctx, c.keys.operations, jobID, "+", followScan)
	_, _ = p.Exec(ctx)
	if err := results.Err(); err != nil {
		return nil, err
	}

	var evs []timelineEvent
	for _, x := range ps {
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
		for _, m := range x.dead.Val() {
			dl := redisstream.ReadDeadLetter(m.Values)
			if dl.OriginalID != jobID {
				continue
			}
			evs = append(evs, timelineEvent{AtMS: dl.DeadAtMS, Kind: "dead letter", Stream: x.s.Dead, ID: m.ID, Fields: fieldsOf(m.Values)})
		}
	}
	for _, m := range results.Val() {
		if s, _ := m.Values["job_id"].(string); s == jobID {
			res := toResult(m)
			at, _ := strconv.ParseInt(res.CompletedAtMS, 10, 64)
			evs = append(evs, timelineEvent{AtMS: at, Kind: "result", Stream: c.keys.results, ID: m.ID, Fields: fieldsOf(m.Values)})
		}
	}
	for _, m := range ops.Val() {
		if s, _ := m.Values["source_ref"].(string); s == jobID {
			at, _ := strconv.ParseInt(str(m.Values, "finished_at_ms"), 10, 64)
			evs = append(evs, timelineEvent{AtMS: at, Kind: "operation", Stream: c.keys.operations, ID: m.ID, Fields: fieldsOf(m.Values)})
		}
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
