package main

import (
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// massBegins fills the begin-step times of the mass stop from the
// operation log: each stop's entry carries started_at_ms, when its begin
// step ran (rtmanager's clock, the machine's, as the entry ids are). They
// tell how long a job waited to be taken up against how long its stop took
// once taken: the fast game's result is late either because its begin
// step waited behind the others' or because its stop was slow.
func massBegins(res *massResult, jobIDs []string, ops []redis.XMessage) error {
	begun := make(map[string]int64, len(jobIDs))
	for _, m := range ops {
		if op, _ := m.Values["operation"].(string); op != "stop" {
			continue
		}
		ref, _ := m.Values["source_ref"].(string)
		s, _ := m.Values["started_at_ms"].(string)
		ms, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("operation %s: started_at_ms %q: %w", m.ID, s, err)
		}
		if prev, ok := begun[ref]; !ok || ms < prev {
			begun[ref] = ms // a retried job: its first begin step
		}
	}
	t0 := idMS(jobIDs[0])
	var last int64
	for _, id := range jobIDs {
		ms, ok := begun[id]
		if !ok {
			return fmt.Errorf("no stop of job %s in the operation log", id)
		}
		last = max(last, ms)
	}
	fast := jobIDs[len(jobIDs)-1]
	res.BegunS = float64(last-t0) / 1000
	res.FastBeginMS = begun[fast] - idMS(fast)
	return nil
}
