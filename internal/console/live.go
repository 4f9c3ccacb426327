package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// live streams new results as server-sent events (event "result", the
// result as JSON, the entry id as the event id, so a reconnecting browser
// resumes with Last-Event-ID). It polls with a non-blocking XRANGE, so an
// open console holds no Redis connection between polls.
func (c *Console) live(w http.ResponseWriter, r *http.Request) {
	after := r.URL.Query().Get("after")
	if id := r.Header.Get("Last-Event-ID"); entryID.MatchString(id) {
		after = id
	}
	if !entryID.MatchString(after) {
		http.Error(w, "after: want a stream entry id", http.StatusBadRequest)
		return
	}
	f := resultFilter{Outcome: r.URL.Query().Get("outcome"), ErrorCode: r.URL.Query().Get("code")}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, "retry: 2000\n\n")
	fl.Flush()

	t := time.NewTicker(c.opts.LivePoll)
	defer t.Stop()
	// A stream ends now and then; the browser reconnects where it was.
	end := time.NewTimer(5 * time.Minute)
	defer end.Stop()
	for {
		msgs, err := c.rdb.XRangeN(r.Context(), c.keys.results, "("+after, "+", 200).Result()
		if err != nil && r.Context().Err() == nil {
			_, _ = fmt.Fprintf(w, "event: problem\ndata: %s\n\n", jsonString("read results: "+err.Error()))
		}
		for _, m := range msgs {
			after = m.ID
			res := toResult(m)
			if !f.match(res) {
				continue
			}
			b, _ := json.Marshal(res)
			_, _ = fmt.Fprintf(w, "id: %s\nevent: result\ndata: %s\n\n", m.ID, b)
		}
		fl.Flush()
		if len(msgs) == 200 {
			continue // more waiting: read on at once
		}
		select {
		case <-r.Context().Done():
			return
		case <-c.done.Done():
			return
		case <-end.C:
			return
		case <-t.C:
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
