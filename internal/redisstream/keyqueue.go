package redisstream

import (
	"strings"
	"unsafe"
)

// keyQueue is the reader's queue of held entries: entries with equal
// partition key are handed out one at a time and in stream order, entries
// without a key as they come. It is plain data: no Redis, no goroutines and
// no lock of its own (the reader calls it under r.mu).
type keyQueue struct {
	idle    []*worker              // workers with room for one entry
	ready   []*Delivery            // may be handed out now, in order
	waiting map[string][]*Delivery // behind a busy partition key, in id order
	busy    map[string]*Delivery   // partition key -> delivery that holds it
	held    map[string]*Delivery   // every entry the process holds, by id (and shard: Delivery.ref)
	bytes   int64                  // the size of the held entries
	// byPayload is held by the first byte of each entry's payload: every
	// held entry has a payload array of its own (accept, readloop.go), so Middleware
	// finds a message's delivery from the message alone, with no header to
	// add to every message for it.
	byPayload map[*byte]*Delivery
}

func newKeyQueue() keyQueue {
	return keyQueue{
		waiting:   map[string][]*Delivery{},
		busy:      map[string]*Delivery{},
		held:      map[string]*Delivery{},
		byPayload: map[*byte]*Delivery{},
	}
}

// add queues a new delivery in stream order behind its partition key.
func (q *keyQueue) add(d *Delivery) {
	q.hold(d)
	if d.key == "" {
		q.ready = append(q.ready, d)
		return
	}
	h, isBusy := q.busy[d.key]
	if !isBusy {
		q.busy[d.key] = d
		q.ready = append(q.ready, d)
		return
	}
	if h.retrying && idLess(d.id, h.id) {
		// An older entry of the key (claimed from a consumer that died)
		// goes before a newer one that only waits for its retry: the newer
		// one may well be waiting for exactly what the older one does.
		q.busy[d.key] = d
		q.ready = append(q.ready, d)
		q.queue(h)
		return
	}
	q.queue(d)
}

// queue puts d in its key's queue in stream order (claimed entries can be
// older than the ones queued already).
func (q *keyQueue) queue(d *Delivery) {
	w := q.waiting[d.key]
	i := len(w)
	for i > 0 && idLess(d.id, w[i-1].id) {
		i--
	}
	w = append(w, nil)
	copy(w[i+1:], w[i:])
	w[i] = d
	q.waiting[d.key] = w
}

// unqueue takes d out of its key's queue, if it is there.
func (q *keyQueue) unqueue(d *Delivery) {
	w := q.waiting[d.key]
	for i, x := range w {
		if x == d {
			w = append(w[:i], w[i+1:]...)
			break
		}
	}
	if len(w) == 0 {
		delete(q.waiting, d.key)
	} else {
		q.waiting[d.key] = w
	}
}

// idLess orders stream entry ids ("ms-seq") numerically.
func idLess(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	if len(am) != len(bm) {
		return len(am) < len(bm)
	}
	if am != bm {
		return am < bm
	}
	if len(as) != len(bs) {
		return len(as) < len(bs)
	}
	return as < bs
}

// dispatch hands ready entries to idle workers, oldest idle worker first,
// and calls hand for each pair. Only idle workers get an entry, so hand
// never has to wait for a worker. The idle list is shifted down in place
// (at most one per worker): slicing off its head instead made each
// workerDone's append find no room and allocate, about once per job.
func (q *keyQueue) dispatch(hand func(w *worker, d *Delivery)) {
	for len(q.idle) > 0 && len(q.ready) > 0 {
		w := q.idle[0]
		n := copy(q.idle, q.idle[1:])
		q.idle[n] = nil
		q.idle = q.idle[:n]
		d := q.ready[0]
		q.ready[0] = nil
		q.ready = q.ready[1:]
		w.current, d.worker = d, w
		hand(w, d)
	}
}

// workerAdded makes a new worker idle.
func (q *keyQueue) workerAdded(w *worker) {
	q.idle = append(q.idle, w)
}

// workerRemoved stops giving w entries; the one it has, it still handles.
func (q *keyQueue) workerRemoved(w *worker) {
	w.removed = true
	q.idle = remove(q.idle, w)
}

func remove(ws []*worker, w *worker) []*worker {
	for i, x := range ws {
		if x == w {
			return append(ws[:i], ws[i+1:]...)
		}
	}
	return ws
}

// workerDone frees the worker that handled d.
func (q *keyQueue) workerDone(d *Delivery) {
	w := d.worker
	d.worker = nil
	if w == nil {
		return
	}
	w.current = nil
	if !w.removed {
		q.idle = append(q.idle, w)
	}
}

// pushFront puts d at the front of the ready entries: it still holds its
// partition key and goes next.
func (q *keyQueue) pushFront(d *Delivery) {
	q.ready = append([]*Delivery{d}, q.ready...)
}

// retry marks d as waiting for its retry backoff: it keeps its key, but an
// older entry of the key goes first: one that arrives meanwhile (add), or
// one that arrived while d was being handled and waits behind it (here).
// Without the second, a newer job that fails because an older one (claimed
// from a dead consumer) owns its game kept the key through all its retries
// while the older one waited behind it, and ran out of deliveries.
func (q *keyQueue) retry(d *Delivery) {
	d.retrying = true
	if d.key == "" || q.busy[d.key] != d {
		return
	}
	w := q.waiting[d.key]
	if len(w) == 0 || !idLess(w[0].id, d.id) {
		return
	}
	older := w[0]
	if len(w) == 1 {
		delete(q.waiting, d.key)
	} else {
		q.waiting[d.key] = w[1:]
	}
	q.busy[d.key] = older
	if !older.retrying {
		q.ready = append(q.ready, older)
	}
	q.queue(d)
}

// retried puts d back after its backoff, at the front, if it still holds
// its key; otherwise an older entry of the key took it meanwhile and d
// waits in the key's queue (add put it there).
func (q *keyQueue) retried(d *Delivery) {
	d.retrying = false
	if d.key == "" || q.busy[d.key] == d {
		q.pushFront(d)
	}
}

// finish forgets d: its partition key passes to the next entry of the key.
func (q *keyQueue) finish(d *Delivery) {
	if q.held[d.ref()] != d {
		return
	}
	q.drop(d)
	if d.key == "" {
		return
	}
	if q.busy[d.key] != d {
		// A retrying entry that lost its key to an older one (add, retry)
		// waits in the key's queue: it must not get the key later.
		q.unqueue(d)
		return
	}
	w := q.waiting[d.key]
	if len(w) == 0 {
		delete(q.busy, d.key)
		return
	}
	next := w[0]
	if len(w) == 1 {
		delete(q.waiting, d.key)
	} else {
		q.waiting[d.key] = w[1:]
	}
	q.busy[d.key] = next
	if !next.retrying {
		q.ready = append(q.ready, next)
	}
	// A retrying entry goes on when its backoff ends (retried).
}

// releaseQueued drops every entry not being handled; they stay pending in
// Redis for any consumer to claim.
func (q *keyQueue) releaseQueued() {
	for _, d := range q.ready {
		q.drop(d)
		if q.busy[d.key] == d {
			delete(q.busy, d.key)
		}
	}
	q.ready = nil
	for k, w := range q.waiting {
		for _, d := range w {
			q.drop(d)
		}
		delete(q.waiting, k)
	}
	// Entries waiting for their retry backoff, with a key or without.
	for _, d := range q.held {
		if d.retrying {
			q.drop(d)
			if d.key != "" && q.busy[d.key] == d {
				delete(q.busy, d.key)
			}
		}
	}
}

// hold records d as held.
func (q *keyQueue) hold(d *Delivery) {
	q.held[d.ref()] = d
	if p := unsafe.SliceData(d.dec.payload); p != nil {
		q.byPayload[p] = d
	}
	q.bytes += d.size
	if d.sh != nil {
		d.sh.held++
	}
}

// drop forgets a held entry.
func (q *keyQueue) drop(d *Delivery) {
	if ref := d.ref(); q.held[ref] == d {
		delete(q.held, ref)
		if p := unsafe.SliceData(d.dec.payload); p != nil && q.byPayload[p] == d {
			delete(q.byPayload, p)
		}
		q.bytes -= d.size
		if d.sh != nil {
			d.sh.held--
		}
	}
}
