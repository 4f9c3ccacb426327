package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/contractschema"
	"galaxy/rtmanager/internal/redisstream"
)

const (
	jobsStream    = runtimejobs.StopJobsChannelPath
	resultsStream = runtimejobs.JobResultsChannelPath
	deadStream    = runtimejobs.StopJobsDeadChannelPath
	group         = "rtmanager"
)

// streamKeys are the keys of one shard's job, result and dead-letter
// streams. Entry ids are unique per stream only, so a check keys jobs and
// results by their stream.
type streamKeys struct {
	jobs, results, dead string
}

// plainKeys are the keys of a single Redis with one shard: the channels'
// addresses.
var plainKeys = streamKeys{jobs: jobsStream, results: resultsStream, dead: deadStream}

// contract reads streams through the contract.
type contract struct {
	doc     *api.Document
	schemas *contractschema.Validator
}

func loadContract() (*contract, error) {
	doc, err := api.Load()
	if err != nil {
		return nil, err
	}
	v, err := contractschema.New(doc)
	if err != nil {
		return nil, err
	}
	return &contract{doc: doc, schemas: v}, nil
}

// readAll reads a whole stream in chunks (entries may be 1 MiB each).
func readAll(ctx context.Context, rdb redis.UniversalClient, stream string, chunk int64) ([]redis.XMessage, error) {
	var out []redis.XMessage
	start := "-"
	for i := 0; i < 1_000_000; i++ {
		msgs, err := rdb.XRangeN(ctx, stream, start, "+", chunk).Result()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		out = append(out, msgs...)
		if int64(len(msgs)) < chunk {
			return out, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
	return nil, fmt.Errorf("read %s: too many entries", stream)
}

// typed maps an entry onto its contract payload (integers as numbers) and
// keeps the fields the schema does not name as strings, as the e2e tests do.
func (c *contract) typed(stream string, values map[string]any) (map[string]any, error) {
	ch, ok := c.doc.ChannelByAddress(stream)
	if !ok {
		return nil, fmt.Errorf("no channel %s in the contract", stream)
	}
	payload, err := redisstream.FieldsToPayload(ch, values)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(payload, &out); err != nil {
		return nil, err
	}
	for k, v := range values {
		if _, ok := out[k]; !ok {
			out[k] = v
		}
	}
	return out, nil
}

// validResult checks a result entry against the contract.
func (c *contract) validResult(m redis.XMessage) error {
	t, err := c.typed(resultsStream, m.Values)
	if err != nil {
		return fmt.Errorf("result %s: %w", m.ID, err)
	}
	if err := c.schemas.Validate(resultsStream, t); err != nil {
		return fmt.Errorf("result %s: %w", m.ID, err)
	}
	return nil
}

// validDead checks a dead letter against the contract. Its own fields go
// through the codec; the original fields it carries (which may be 1 MiB,
// invalid UTF-8 or hundreds of them) are additional properties, checked
// against the job entry instead.
func (c *contract) validDead(m redis.XMessage) error {
	own := map[string]any{}
	for _, f := range redisstream.DeadLetterFields() {
		if v, ok := m.Values[f]; ok {
			own[f] = v
		}
	}
	t, err := c.typed(deadStream, own)
	if err != nil {
		return fmt.Errorf("dead letter %s: %w", m.ID, err)
	}
	for k, v := range m.Values {
		if _, ok := t[k]; !ok {
			t[k] = v
		}
	}
	if err := c.schemas.Validate(deadStream, t); err != nil {
		return fmt.Errorf("dead letter %s: %w", m.ID, err)
	}
	return nil
}

// checkReport is what the checker found in both streams.
type checkReport struct {
	Jobs          int
	Results       int
	Answered      int // distinct job ids with a result
	Duplicates    int // results beyond the first per job id
	Missing       int // jobs that must have a result and have none
	Unknown       int // results whose job_id is no entry of the job stream
	DeadLetters   int
	DeadDups      int // dead letters beyond the first per original id
	ContractFails int
	BadCopies     int // dead letters whose original fields differ from the job
	Outcomes      map[string]int
	Examples      []string // first problems, for the failure message

	results map[string][]map[string]string    // by job id
	dead    map[string]redisstream.DeadLetter // by original id
	jobs    []redis.XMessage
}

func (r *checkReport) problem(format string, a ...any) {
	if len(r.Examples) < 8 {
		r.Examples = append(r.Examples, fmt.Sprintf(format, a...))
	}
}

// check reads the job, result and dead-letter streams of one shard (k).
// needsResult says whether a job entry must be answered with a result
// (nil: every job).
func (c *contract) check(ctx context.Context, rdb redis.UniversalClient, k streamKeys, needsResult func(redis.XMessage) bool) (*checkReport, error) {
	jobs, err := readAll(ctx, rdb, k.jobs, 500)
	if err != nil {
		return nil, err
	}
	results, err := readAll(ctx, rdb, k.results, 2000)
	if err != nil {
		return nil, err
	}
	dead, err := readAll(ctx, rdb, k.dead, 100)
	if err != nil {
		return nil, err
	}
	r := &checkReport{Jobs: len(jobs), Results: len(results), DeadLetters: len(dead), Outcomes: map[string]int{},
		results: map[string][]map[string]string{}, dead: map[string]redisstream.DeadLetter{}, jobs: jobs}
	jobByID := make(map[string]redis.XMessage, len(jobs))
	for _, j := range jobs {
		jobByID[j.ID] = j
	}
	for _, m := range results {
		if err := c.validResult(m); err != nil {
			r.ContractFails++
			r.problem("%v", err)
		}
		vals := strValues(m.Values)
		id := vals["job_id"]
		if len(r.results[id]) > 0 {
			r.Duplicates++
			r.problem("job %s answered again by result %s of %s", id, m.ID, k.results)
		}
		r.results[id] = append(r.results[id], vals)
		if _, ok := jobByID[id]; !ok {
			r.Unknown++
			r.problem("result %s answers %q, no entry of %s", m.ID, id, k.jobs)
		}
		r.Outcomes[outcomeKey(vals)]++
	}
	r.Answered = len(r.results)
	for _, m := range dead {
		if err := c.validDead(m); err != nil {
			r.ContractFails++
			r.problem("%v", err)
		}
		dl := redisstream.ReadDeadLetter(m.Values)
		orig := dl.OriginalID
		if _, dup := r.dead[orig]; dup {
			r.DeadDups++
			r.problem("entry %s dead-lettered twice", orig)
		}
		r.dead[orig] = dl
		j, ok := jobByID[orig]
		if !ok {
			r.BadCopies++
			r.problem("dead letter %s names %q, no entry of %s", m.ID, orig, k.jobs)
			continue
		}
		if !carriesFields(dl, strValues(j.Values)) {
			r.BadCopies++
			r.problem("dead letter %s does not carry the fields of %s", m.ID, orig)
		}
	}
	for _, j := range jobs {
		if (needsResult == nil || needsResult(j)) && len(r.results[j.ID]) == 0 {
			r.Missing++
			r.problem("job %s of %s has no result", j.ID, k.jobs)
		}
	}
	return r, nil
}

func outcomeKey(vals map[string]string) string {
	if vals["error_code"] == "" {
		return vals["outcome"]
	}
	return vals["outcome"] + "/" + vals["error_code"]
}

func strValues(v map[string]any) map[string]string {
	out := make(map[string]string, len(v))
	for k, x := range v {
		s, _ := x.(string)
		out[k] = s
	}
	return out
}

// carriesFields reports whether a dead letter carries its job's fields:
// all of them unchanged, or, when it says it was cut (dead_truncated), a
// subset of them whose values are prefixes of the job's.
func carriesFields(dead redisstream.DeadLetter, job map[string]string) bool {
	if dead.Truncated == "" {
		return sameFields(dead.Original, job)
	}
	for k, v := range dead.Original {
		if w, ok := job[k]; !ok || !strings.HasPrefix(w, v) {
			return false
		}
	}
	return true
}

func sameFields(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// ok is true when every job that needs a result has exactly one, nothing is
// answered twice or out of thin air, and every entry matches the contract.
func (r *checkReport) ok() bool {
	return r.Missing == 0 && r.Duplicates == 0 && r.Unknown == 0 && r.ContractFails == 0 && r.BadCopies == 0 && r.DeadDups == 0
}

func (r *checkReport) outcomes() string {
	keys := make([]string, 0, len(r.Outcomes))
	for k := range r.Outcomes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, r.Outcomes[k]))
	}
	return strings.Join(parts, " ")
}

// groupState is the consumer group as XINFO GROUPS/XINFO CONSUMERS see it.
type groupState struct {
	Pending      int64
	LastDeliv    string
	LastEntry    string
	PerConsumer  map[string]int64
	StreamExists bool
}

func readGroup(ctx context.Context, rdb redis.UniversalClient, jobs string) (groupState, error) {
	gs := groupState{PerConsumer: map[string]int64{}}
	info, err := rdb.XInfoStream(ctx, jobs).Result()
	if err != nil {
		if strings.Contains(err.Error(), "no such key") {
			return gs, nil
		}
		return gs, err
	}
	gs.StreamExists = true
	gs.LastEntry = info.LastGeneratedID
	groups, err := rdb.XInfoGroups(ctx, jobs).Result()
	if err != nil {
		return gs, err
	}
	for _, g := range groups {
		if g.Name == group {
			gs.Pending = g.Pending
			gs.LastDeliv = g.LastDeliveredID
		}
	}
	cs, err := rdb.XInfoConsumers(ctx, jobs, group).Result()
	if err == nil {
		for _, c := range cs {
			gs.PerConsumer[c.Name] = c.Pending
		}
	}
	return gs, nil
}

// drained is true once every entry was delivered and acknowledged: from
// then on no result can be written (a commit needs a pending entry).
func (g groupState) drained() bool {
	return g.StreamExists && g.Pending == 0 && g.LastDeliv == g.LastEntry
}

// waitDrained waits until the group has delivered and acknowledged every
// entry of each job stream (one per shard), or timeout passes.
func waitDrained(ctx context.Context, rdb redis.UniversalClient, jobs []string, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	deadline := t0.Add(timeout)
	for _, key := range jobs {
		var last groupState
		for {
			if ctx.Err() != nil {
				return 0, ctx.Err()
			}
			gs, err := readGroup(ctx, rdb, key)
			if err == nil {
				last = gs
				if gs.drained() {
					break
				}
			}
			if time.Now().After(deadline) {
				return 0, fmt.Errorf("group of %s not drained within %s: pending %d, last delivered %s, last entry %s",
					key, timeout, last.Pending, last.LastDeliv, last.LastEntry)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return time.Since(t0), nil
}

// gamesStopped counts the games whose runtime record (at recordKey(game))
// says stopped.
func gamesStopped(ctx context.Context, rdb redis.UniversalClient, games []string, recordKey func(string) string) (int, []string, error) {
	pipe := rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(games))
	for i, g := range games {
		cmds[i] = pipe.HGet(ctx, recordKey(g), "status")
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return 0, nil, err
	}
	n := 0
	var notStopped []string
	for i, c := range cmds {
		if c.Val() == "stopped" {
			n++
		} else if len(notStopped) < 5 {
			notStopped = append(notStopped, games[i]+"="+c.Val())
		}
	}
	return n, notStopped, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// checkShards checks every shard on its own (a job is answered on its own
// shard's result stream; entry ids repeat across streams, so a job is known
// by its shard and its id) and sums the reports; the per-shard reports
// come back too, in the order of shards.
func (c *contract) checkShards(ctx context.Context, rdb redis.UniversalClient, shards []streamKeys) (*checkReport, []*checkReport, error) {
	sum := &checkReport{Outcomes: map[string]int{}}
	per := make([]*checkReport, len(shards))
	for n, k := range shards {
		r, err := c.check(ctx, rdb, k, nil)
		if err != nil {
			return nil, nil, fmt.Errorf("shard %d: %w", n, err)
		}
		per[n] = r
		sum.Jobs += r.Jobs
		sum.Results += r.Results
		sum.Answered += r.Answered
		sum.Duplicates += r.Duplicates
		sum.Missing += r.Missing
		sum.Unknown += r.Unknown
		sum.DeadLetters += r.DeadLetters
		sum.DeadDups += r.DeadDups
		sum.ContractFails += r.ContractFails
		sum.BadCopies += r.BadCopies
		for o, v := range r.Outcomes {
			sum.Outcomes[o] += v
		}
		for _, x := range r.Examples {
			sum.problem("shard %d: %s", n, x)
		}
	}
	return sum, per, nil
}
