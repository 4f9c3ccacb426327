package console

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Results are read newest first from runtime:job_results in bounded pages.

const (
	// resultsScan is how many of the latest results one page filters.
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
// scan, newest first, and the newest id read (where a live stream goes on).
func (c *Console) latestResults(ctx context.Context, f resultFilter, scan int64, show int) ([]resultView, string, error) {
	msgs, err := c.rdb.XRevRangeN(ctx, c.keys.results, "+", "-", scan).Result()
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", c.keys.results, err)
	}
	newest := ""
	if len(msgs) > 0 {
		newest = msgs[0].ID
	}
	var out []resultView
	for _, m := range msgs {
		if r := toResult(m); f.match(r) {
			out = append(out, r)
			if len(out) == show {
				break
			}
		}
	}
	return out, newest, nil
}
