package console

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// Results are read newest first from runtime:job_results in bounded pages.

const (
	// resultsScan is how many of the latest results a filtered page reads.
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
}

func toResult(m redis.XMessage) resultView {
	s := func(k string) string { v, _ := m.Values[k].(string); return v }
	return resultView{
		ID: m.ID, JobID: s("job_id"), GameID: s("game_id"), Operation: s("operation"),
		Outcome: s("outcome"), ErrorCode: s("error_code"), ErrorMessage: s("error_message"),
		ContainerID: s("container_id"), EngineEndpoint: s("engine_endpoint"), CompletedAtMS: s("completed_at_ms"),
	}
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

// latestResults returns up to show results matching f among the latest
// budget, newest first, and the newest id read (where a live stream goes
// on).
func (c *Console) latestResults(ctx context.Context, f resultFilter, budget, show int) ([]resultView, string, error) {
	sc, err := c.scan(ctx, scan{stream: c.keys.results, backward: true, budget: budget, want: show,
		match: func(m redis.XMessage) bool { return f.match(toResult(m)) }})
	if err != nil {
		return nil, "", err
	}
	out := make([]resultView, 0, len(sc.matches))
	for _, m := range sc.matches {
		out = append(out, toResult(m))
	}
	return out, sc.first, nil
}
