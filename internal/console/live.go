package console

import (
	"fmt"
	"net/http"
	"time"
)

// live streams new results as server-sent events: event "result" with the
// result as JSON and its entry id as the event id (a reconnecting browser
// resumes with Last-Event-ID), and event "gap" when results were left out
// because more arrived than one poll sends. The stream first catches up
// from ?after= (one bounded read), then follows the console's hub, the one
// reader of new results for all open streams.
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
	// Subscribe before catching up, so nothing written meanwhile is missed.
	batches, cancel, err := c.hub.subscribe(r.Context())
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "read the results", err)
		return
	}
	defer cancel()
	msgs, err := c.rdb.XRangeN(r.Context(), c.keys.results, "("+after, "+", liveBatchSize).Result()
	if err != nil {
		c.fail(w, r, http.StatusBadGateway, "read the results", err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, "retry: 2000\n\n")
	last := after
	send := func(b liveBatch) {
		if b.gap {
			_, _ = fmt.Fprint(w, "event: gap\ndata: {}\n\n")
		}
		for _, it := range b.items {
			if !newer(it.id, last) {
				continue
			}
			last = it.id
			if f.match(it.res) {
				_, _ = fmt.Fprintf(w, "id: %s\nevent: result\ndata: %s\n\n", it.id, it.data)
			}
		}
		fl.Flush()
	}
	send(liveBatch{items: toItems(msgs), gap: len(msgs) == liveBatchSize})
	// A stream ends now and then; the browser reconnects where it was.
	end := time.NewTimer(5 * time.Minute)
	defer end.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.done.Done():
			return
		case <-end.C:
			return
		case b := <-batches:
			send(b)
		}
	}
}

// newer reports whether entry id a comes after b.
func newer(a, b string) bool {
	am, as := splitID(a)
	bm, bs := splitID(b)
	return am > bm || (am == bm && as > bs)
}

func splitID(id string) (uint64, uint64) {
	var ms, seq uint64
	_, _ = fmt.Sscanf(id, "%d-%d", &ms, &seq)
	return ms, seq
}
