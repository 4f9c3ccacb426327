package console

import (
	"net/http"
	"net/url"
	"strings"
)

// isJobRef matches a job id, bare or with its shard (keys.shardRef).
func isJobRef(q string) bool {
	if n, id, found := strings.Cut(q, "/"); found {
		return n != "" && strings.Trim(n, "0123456789") == "" && validEntryID(id)
	}
	return validEntryID(q)
}

type jobsPage struct {
	Filter   resultFilter
	Results  []resultView
	Scanned  int // per shard
	Shards   int
	Shown    int
	LiveURL  string
	Outcomes []string
	Codes    []string
}

// errorCodes are the contract's result error codes, for the filter.
var errorCodes = []string{"none", "replay_no_op", "not_found", "invalid_job", "stop_failed", "start_failed", "internal"}

// jobs lists the latest results (filtered by outcome and error code), or
// with ?q= finds a job (an entry id: its timeline) or a game (its page).
func (c *Console) jobs(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	switch {
	case q == "":
	case isJobRef(q):
		c.timeline(w, r, q)
		return
	case c.gameID.MatchString(q):
		http.Redirect(w, r, "/games/"+url.PathEscape(q), http.StatusSeeOther)
		return
	default:
		c.render(w, r, http.StatusBadRequest, "error", "not a job id (like 1764160000000-0) nor a game id: "+q)
		return
	}
	f := resultFilter{Outcome: r.URL.Query().Get("outcome"), ErrorCode: r.URL.Query().Get("code")}
	// Unfiltered, the page reads just what it shows.
	budget := resultsShow
	if f != (resultFilter{}) {
		budget = resultsScan
	}
	res, newest, err := c.latestResults(r.Context(), f, budget, resultsShow)
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "read the results", err)
		return
	}
	c.render(w, r, http.StatusOK, "jobs", jobsPage{
		Filter: f, Results: res, Shown: resultsShow,
		Scanned: perShardBudget(budget, resultsShow, c.keys.shards()), Shards: c.keys.shards(),
		LiveURL:  liveURL(newest.String(), f),
		Outcomes: []string{"success", "failure"}, Codes: errorCodes,
	})
}

// liveURL is the live stream of results after id that match f.
func liveURL(after string, f resultFilter) string {
	if after == "" {
		after = "0-0"
	}
	v := url.Values{"after": {after}}
	if f.Outcome != "" {
		v.Set("outcome", f.Outcome)
	}
	if f.ErrorCode != "" {
		v.Set("code", f.ErrorCode)
	}
	return "/jobs/live?" + v.Encode()
}
