package console

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// live streams new results of every shard as server-sent events: event
// "result" with the result as JSON and its entry id as the event id (with
// shards, the cursor of one id per shard; a reconnecting browser resumes
// with Last-Event-ID), and event "gap" when results were left out
// because more arrived than one poll sends. The stream first catches up
// from ?after= (one bounded read), then follows the console's hub, the one
// reader of new results for all open streams.
func (c *Console) live(w http.ResponseWriter, r *http.Request) {
	shards := c.keys.shards()
	after := r.URL.Query().Get("after")
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		if _, ok := readCursor(id, shards); ok {
			after = id
		}
	}
	cur, ok := readCursor(after, shards)
	if !ok {
		want := "a stream entry id"
		if shards > 1 {
			want = fmt.Sprintf("%d stream entry ids, one per shard, joined by commas", shards)
		}
		http.Error(w, "after: want "+want, http.StatusBadRequest)
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
	first, err := c.readAfter(r.Context(), cur, true)
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
	// last is what was sent per shard: the catch-up and the hub's batches
	// overlap, and a result goes out once.
	last := slices.Clone(cur)
	send := func(b liveBatch) {
		if b.gap {
			_, _ = fmt.Fprint(w, "event: gap\ndata: {}\n\n")
		}
		moved := false
		for _, it := range b.items {
			if !newer(it.id, last[it.shard]) {
				continue
			}
			last[it.shard], moved = it.id, true
			if !f.match(it.res) {
				continue
			}
			if shards == 1 {
				_, _ = fmt.Fprintf(w, "id: %s\n", it.id)
			}
			_, _ = fmt.Fprintf(w, "event: result\ndata: %s\n\n", it.data)
		}
		if shards > 1 && moved {
			// The event id is where a reconnecting browser resumes: with
			// shards, one id per shard, sent once per batch (an id line
			// alone sets it without an event).
			_, _ = fmt.Fprintf(w, "id: %s\n\n", last)
		}
		fl.Flush()
	}
	send(first)
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
