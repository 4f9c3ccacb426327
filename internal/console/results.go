package console

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Results are read newest first from every shard's result stream in
// bounded pages and merged by entry id.

const (
	// resultsScan is how many of the latest results a filtered page reads
	// (per shard: at least resultsShow, else resultsScan/S).
	resultsScan = 1000
	// resultsShow is how many matching results one page shows.
	resultsShow = 100
)

// resultView is one job result (the contract's RuntimeJobResult fields).
type resultView struct {
	ID             string `json:"id"`
	JobID          string `json:"job_id"`
	GameID         string `json:"game_id"`
	Operation      string `json:"operation"`
	Outcome        string `json:"outcome"`
	ErrorCode      string `json:"error_code"`
	ErrorMessage   string `json:"error_message"`
	ContainerID    string `json:"container_id"`
	EngineEndpoint string `json:"engine_endpoint"`
	CompletedAtMS  string `json:"completed_at_ms"`
	// JobRef is the job id with its shard (keys.shardRef), for links.
	JobRef string `json:"job_ref"`
}

func toResult(m redis.XMessage) resultView {
	s := func(k string) string { v, _ := m.Values[k].(string); return v }
	return resultView{
		ID: m.ID, JobID: s("job_id"), GameID: s("game_id"), Operation: s("operation"),
		Outcome: s("outcome"), ErrorCode: s("error_code"), ErrorMessage: s("error_message"),
		ContainerID: s("container_id"), EngineEndpoint: s("engine_endpoint"), CompletedAtMS: s("completed_at_ms"),
		JobRef: s("job_id"),
	}
}

// shardResult is toResult of shard n's entry: its job id is shard n's.
func (c *Console) shardResult(n int, m redis.XMessage) resultView {
	r := toResult(m)
	if r.JobID != "" {
		r.JobRef = c.keys.shardRef(n, r.JobID)
	}
	return r
}

// resultFilter selects results; empty fields match anything.
type resultFilter struct {
	Outcome, ErrorCode, GameID, JobID string
}

func (f resultFilter) match(r resultView) bool {
	return (f.Outcome == "" || r.Outcome == f.Outcome) &&
		(f.ErrorCode == "" || r.ErrorCode == f.ErrorCode || (f.ErrorCode == "none" && r.ErrorCode == "")) &&
		(f.GameID == "" || r.GameID == f.GameID) &&
		(f.JobID == "" || r.JobID == f.JobID)
}

// perShardBudget is how many entries of each of shards streams a read of
// budget entries showing show takes: the newest show of all may all be
// one shard's.
func perShardBudget(budget, show, shards int) int {
	if shards <= 1 {
		return budget
	}
	return max(show, (budget+shards-1)/shards)
}

// latestResults returns up to show results matching f among the latest
// budget of each shard (perShardBudget), newest first, and the cursor of
// the newest ids read (where a live stream goes on).
func (c *Console) latestResults(ctx context.Context, f resultFilter, budget, show int) ([]resultView, cursor, error) {
	per := make([][]redis.XMessage, c.keys.shards())
	cur := startCursor(c.keys.shards())
	each := perShardBudget(budget, show, c.keys.shards())
	for n, key := range c.keys.results {
		sc, err := c.scan(ctx, scan{stream: key, backward: true, budget: each, want: show,
			match: func(m redis.XMessage) bool { return f.match(toResult(m)) }})
		if err != nil {
			return nil, nil, err
		}
		per[n] = sc.matches
		if sc.first != "" {
			cur[n] = sc.first
		}
	}
	merged := mergeNewestFirst(per)
	out := make([]resultView, 0, min(show, len(merged)))
	for _, sm := range merged {
		if len(out) == show {
			break
		}
		out = append(out, c.shardResult(sm.n, sm.m))
	}
	return out, cur, nil
}
