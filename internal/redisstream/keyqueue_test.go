package redisstream

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// queueState is what a keyQueue holds, by entry id.
type queueState struct {
	ready   []string
	waiting map[string][]string
	busy    map[string]string
	held    []string // sorted
}

func stateOf(q *keyQueue) queueState {
	s := queueState{waiting: map[string][]string{}, busy: map[string]string{}}
	for _, d := range q.ready {
		s.ready = append(s.ready, d.id)
	}
	for k, w := range q.waiting {
		for _, d := range w {
			s.waiting[k] = append(s.waiting[k], d.id)
		}
	}
	for k, d := range q.busy {
		s.busy[k] = d.id
	}
	for id := range q.held {
		s.held = append(s.held, id)
	}
	slices.SortFunc(s.held, func(a, b string) int {
		if idLess(a, b) {
			return -1
		}
		return 1
	})
	return s
}

// queueRun drives a keyQueue in a test. Entries are written "id:key"
// ("7-0:a", or "7-0:" for no key).
type queueRun struct {
	t       *testing.T
	q       keyQueue
	entries map[string]*Delivery
	handed  []string // ids dispatched, in order
}

func newQueueRun(t *testing.T) *queueRun {
	return &queueRun{t: t, q: newKeyQueue(), entries: map[string]*Delivery{}}
}

func (r *queueRun) add(specs ...string) {
	for _, s := range specs {
		id, key, ok := strings.Cut(s, ":")
		require.True(r.t, ok, "entry %q: want id:key", s)
		d := &Delivery{id: id, key: key}
		r.entries[id] = d
		r.q.add(d)
	}
}

func (r *queueRun) d(id string) *Delivery {
	d, ok := r.entries[id]
	require.True(r.t, ok, "no entry %s", id)
	return d
}

// take hands the ready entries to as many workers as given, fresh each.
func (r *queueRun) take(n int) {
	for range n {
		r.q.workerAdded(&worker{})
	}
	r.dispatch()
}

func (r *queueRun) dispatch() {
	r.q.dispatch(func(w *worker, d *Delivery) {
		assert.Same(r.t, d, w.current)
		assert.Same(r.t, w, d.worker)
		r.handed = append(r.handed, d.id)
	})
}

// freeWorker is a worker finishing an entry that stays held (Nak'ed, say).
func (r *queueRun) freeWorker(id string) {
	r.q.workerDone(r.d(id))
}

// done is a worker finishing an entry and the entry being forgotten.
func (r *queueRun) done(id string) {
	d := r.d(id)
	r.q.workerDone(d)
	r.q.finish(d)
}

func TestKeyQueue(t *testing.T) {
	tests := []struct {
		name  string
		steps func(r *queueRun)
		want  queueState
	}{
		{
			name:  "entries without a key are all ready, in order",
			steps: func(r *queueRun) { r.add("1-0:", "2-0:", "3-0:") },
			want:  queueState{ready: []string{"1-0", "2-0", "3-0"}, held: []string{"1-0", "2-0", "3-0"}},
		},
		{
			name:  "one entry per key is ready, the rest wait in order",
			steps: func(r *queueRun) { r.add("1-0:a", "2-0:b", "3-0:a", "4-0:a", "5-0:b") },
			want: queueState{
				ready:   []string{"1-0", "2-0"},
				waiting: map[string][]string{"a": {"3-0", "4-0"}, "b": {"5-0"}},
				busy:    map[string]string{"a": "1-0", "b": "2-0"},
				held:    []string{"1-0", "2-0", "3-0", "4-0", "5-0"},
			},
		},
		{
			name: "a key being handled keeps new entries of the key waiting",
			steps: func(r *queueRun) {
				r.add("1-0:a")
				r.take(1)
				r.add("2-0:a", "3-0:b")
			},
			want: queueState{
				ready:   []string{"3-0"},
				waiting: map[string][]string{"a": {"2-0"}},
				busy:    map[string]string{"a": "1-0", "b": "3-0"},
				held:    []string{"1-0", "2-0", "3-0"},
			},
		},
		{
			name: "waiting entries are kept in id order, numerically",
			steps: func(r *queueRun) {
				// Claimed entries can be older than the ones queued.
				r.add("1-0:a", "10-0:a", "9-0:a", "9-10:a", "9-2:a")
			},
			want: queueState{
				ready:   []string{"1-0"},
				waiting: map[string][]string{"a": {"9-0", "9-2", "9-10", "10-0"}},
				busy:    map[string]string{"a": "1-0"},
				held:    []string{"1-0", "9-0", "9-2", "9-10", "10-0"},
			},
		},
		{
			name: "an older entry waits behind the key's holder that is not retrying",
			steps: func(r *queueRun) {
				r.add("5-0:a")
				r.take(1)
				r.add("3-0:a")
			},
			want: queueState{
				waiting: map[string][]string{"a": {"3-0"}},
				busy:    map[string]string{"a": "5-0"},
				held:    []string{"3-0", "5-0"},
			},
		},
		{
			name: "finish passes the key to the next entry of the key",
			steps: func(r *queueRun) {
				r.add("1-0:a", "2-0:a", "3-0:a")
				r.take(1)
				r.done("1-0")
			},
			want: queueState{
				ready:   []string{"2-0"},
				waiting: map[string][]string{"a": {"3-0"}},
				busy:    map[string]string{"a": "2-0"},
				held:    []string{"2-0", "3-0"},
			},
		},
		{
			name: "finish of the key's last entry frees the key",
			steps: func(r *queueRun) {
				r.add("1-0:a", "2-0:")
				r.take(2)
				r.done("1-0")
				r.done("2-0")
			},
			want: queueState{},
		},
		{
			name: "finish of an entry no longer held changes nothing",
			steps: func(r *queueRun) {
				r.add("1-0:a", "2-0:a")
				r.q.releaseQueued()
				r.add("3-0:a")
				r.q.finish(r.d("1-0"))
			},
			want: queueState{
				ready: []string{"3-0"},
				busy:  map[string]string{"a": "3-0"},
				held:  []string{"3-0"},
			},
		},
		{
			name: "a retrying holder keeps its key against newer entries",
			steps: func(r *queueRun) {
				r.add("5-0:a")
				r.take(1)
				r.freeWorker("5-0")
				r.q.retry(r.d("5-0"))
				r.add("7-0:a")
			},
			want: queueState{
				waiting: map[string][]string{"a": {"7-0"}},
				busy:    map[string]string{"a": "5-0"},
				held:    []string{"5-0", "7-0"},
			},
		},
		{
			name: "an older claimed entry goes before a newer retrying one",
			steps: func(r *queueRun) {
				r.add("5-0:a", "6-0:a")
				r.take(1)
				r.freeWorker("5-0")
				r.q.retry(r.d("5-0"))
				r.add("3-0:a")
			},
			want: queueState{
				ready:   []string{"3-0"},
				waiting: map[string][]string{"a": {"5-0", "6-0"}},
				busy:    map[string]string{"a": "3-0"},
				held:    []string{"3-0", "5-0", "6-0"},
			},
		},
		{
			name: "an older entry waiting behind the key's holder takes the key when the holder goes to retry",
			steps: func(r *queueRun) {
				r.add("5-0:a", "6-0:a")
				r.take(1)
				r.add("3-0:a")
				r.freeWorker("5-0")
				r.q.retry(r.d("5-0"))
			},
			want: queueState{
				ready:   []string{"3-0"},
				waiting: map[string][]string{"a": {"5-0", "6-0"}},
				busy:    map[string]string{"a": "3-0"},
				held:    []string{"3-0", "5-0", "6-0"},
			},
		},
		{
			name: "finish of a retrying entry that lost its key takes it out of the key's queue",
			steps: func(r *queueRun) {
				r.add("5-0:a", "6-0:a")
				r.take(1)
				r.add("3-0:a")
				r.freeWorker("5-0")
				r.q.retry(r.d("5-0"))
				r.q.finish(r.d("5-0")) // acknowledged elsewhere, or shutting down
				r.take(1)
				r.done("3-0")
			},
			want: queueState{
				ready: []string{"6-0"},
				busy:  map[string]string{"a": "6-0"},
				held:  []string{"6-0"},
			},
		},
		{
			name: "a holder going to retry keeps its key against newer waiting entries",
			steps: func(r *queueRun) {
				r.add("5-0:a", "6-0:a")
				r.take(1)
				r.freeWorker("5-0")
				r.q.retry(r.d("5-0"))
			},
			want: queueState{
				waiting: map[string][]string{"a": {"6-0"}},
				busy:    map[string]string{"a": "5-0"},
				held:    []string{"5-0", "6-0"},
			},
		},
		{
			name: "a retrying entry given the key waits for its backoff",
			steps: func(r *queueRun) {
				r.add("5-0:a")
				r.take(1)
				r.freeWorker("5-0")
				r.q.retry(r.d("5-0"))
				r.add("3-0:a")
				r.take(1)
				r.done("3-0")
			},
			want: queueState{
				busy: map[string]string{"a": "5-0"},
				held: []string{"5-0"},
			},
		},
		{
			name: "after its backoff a retrying holder goes first",
			steps: func(r *queueRun) {
				r.add("5-0:a", "6-0:b")
				r.take(1)
				r.freeWorker("5-0")
				r.q.retry(r.d("5-0"))
				r.q.retried(r.d("5-0"))
			},
			want: queueState{
				ready: []string{"5-0", "6-0"},
				busy:  map[string]string{"a": "5-0", "b": "6-0"},
				held:  []string{"5-0", "6-0"},
			},
		},
		{
			name: "after its backoff an entry that lost its key keeps waiting",
			steps: func(r *queueRun) {
				r.add("5-0:a")
				r.take(1)
				r.freeWorker("5-0")
				r.q.retry(r.d("5-0"))
				r.add("3-0:a")
				r.q.retried(r.d("5-0"))
			},
			want: queueState{
				ready:   []string{"3-0"},
				waiting: map[string][]string{"a": {"5-0"}},
				busy:    map[string]string{"a": "3-0"},
				held:    []string{"3-0", "5-0"},
			},
		},
		{
			name: "after its backoff an entry without a key goes first",
			steps: func(r *queueRun) {
				r.add("5-0:", "6-0:")
				r.take(1)
				r.freeWorker("5-0")
				r.q.retry(r.d("5-0"))
				r.q.retried(r.d("5-0"))
			},
			want: queueState{
				ready: []string{"5-0", "6-0"},
				held:  []string{"5-0", "6-0"},
			},
		},
		{
			name: "release drops queued and retrying entries, keeps those being handled",
			steps: func(r *queueRun) {
				r.add("1-0:a", "2-0:c")
				r.take(2)
				r.freeWorker("2-0")
				r.q.retry(r.d("2-0"))
				r.add("3-0:a", "4-0:b", "5-0:", "6-0:c")
				r.q.releaseQueued()
			},
			want: queueState{
				busy: map[string]string{"a": "1-0"},
				held: []string{"1-0"},
			},
		},
		{
			name: "pushFront puts an entry before the ready ones",
			steps: func(r *queueRun) {
				r.add("1-0:a", "2-0:b")
				r.take(1)
				r.freeWorker("1-0")
				r.q.pushFront(r.d("1-0"))
			},
			want: queueState{
				ready: []string{"1-0", "2-0"},
				busy:  map[string]string{"a": "1-0", "b": "2-0"},
				held:  []string{"1-0", "2-0"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newQueueRun(t)
			tt.steps(r)
			want := tt.want
			if want.waiting == nil {
				want.waiting = map[string][]string{}
			}
			if want.busy == nil {
				want.busy = map[string]string{}
			}
			assert.Equal(t, want, stateOf(&r.q))
		})
	}
}

func TestKeyQueueDispatchesToIdleWorkersInTurn(t *testing.T) {
	r := newQueueRun(t)
	w1, w2 := &worker{}, &worker{}
	r.q.workerAdded(w1)
	r.q.workerAdded(w2)
	r.add("1-0:", "2-0:", "3-0:")
	r.dispatch()
	require.Equal(t, []string{"1-0", "2-0"}, r.handed, "one entry per idle worker")
	assert.Same(t, r.d("1-0"), w1.current)
	assert.Same(t, r.d("2-0"), w2.current)
	assert.Empty(t, r.q.idle)

	r.done("2-0")
	assert.Nil(t, w2.current)
	r.dispatch()
	assert.Equal(t, []string{"1-0", "2-0", "3-0"}, r.handed, "a freed worker takes the next entry")
	assert.Same(t, r.d("3-0"), w2.current)

	// A removed worker finishes its entry but gets no more.
	r.q.workerRemoved(w1)
	r.add("4-0:")
	r.done("1-0")
	r.dispatch()
	assert.Nil(t, w1.current)
	assert.Equal(t, []string{"1-0", "2-0", "3-0"}, r.handed)
	assert.Equal(t, []string{"4-0"}, stateOf(&r.q).ready)

	r.done("3-0")
	r.dispatch()
	assert.Equal(t, []string{"1-0", "2-0", "3-0", "4-0"}, r.handed)
	assert.Same(t, r.d("4-0"), w2.current)
}

func TestKeyQueueRemovedIdleWorkerGetsNothing(t *testing.T) {
	r := newQueueRun(t)
	w1, w2 := &worker{}, &worker{}
	r.q.workerAdded(w1)
	r.q.workerAdded(w2)
	r.q.workerRemoved(w1)
	r.add("1-0:", "2-0:")
	r.dispatch()
	assert.Equal(t, []string{"1-0"}, r.handed)
	assert.Nil(t, w1.current)
	assert.Same(t, r.d("1-0"), w2.current)
}

func TestIDLess(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"1-0", "2-0", true},
		{"2-0", "1-0", false},
		{"9-0", "10-0", true},
		{"10-0", "9-0", false},
		{"5-1", "5-2", true},
		{"5-9", "5-10", true},
		{"5-10", "5-9", false},
		{"5-3", "5-3", false},
		{"1764160000000-0", "1764160000001-0", true},
		{"999-99", "1000-0", true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, idLess(tt.a, tt.b), "idLess(%s, %s)", tt.a, tt.b)
	}
}

// Handing out entries and freeing workers, over and over, allocates
// nothing once the idle list has its size.
func TestKeyQueueDispatchDoesNotAllocate(t *testing.T) {
	q := newKeyQueue()
	ws := make([]*worker, 4)
	for i := range ws {
		ws[i] = &worker{}
		q.workerAdded(ws[i])
	}
	ds := make([]*Delivery, len(ws))
	for i := range ds {
		ds[i] = &Delivery{id: fmt.Sprintf("%d-0", i+1)}
	}
	hand := func(*worker, *Delivery) {}
	ready := make([]*Delivery, len(ds))
	allocs := testing.AllocsPerRun(100, func() {
		copy(ready, ds)
		q.ready = ready
		q.dispatch(hand)
		for _, d := range ds {
			q.workerDone(d)
		}
	})
	assert.Zero(t, allocs)
}
