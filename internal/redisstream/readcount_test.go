package redisstream

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Under load a read waits for ReadCount of room; while fewer entries are
// ready than there are workers it reads whatever room there is.
func TestReadCountWaitsForAFullBatchOnlyUnderLoad(t *testing.T) {
	r := &reader{b: &Broker{opts: Options{ReadCount: 256, Prefetch: 600, MaxBytesInHand: 64 << 20}}, q: newKeyQueue(), entryEst: 200}
	hold := func(n int) {
		r.q.held = map[string]*Delivery{}
		for i := 0; i < n; i++ {
			r.q.held[string(rune(i))] = &Delivery{}
		}
	}
	workers := func(n int) { r.workers = make([]*worker, n) }
	ready := func(n int) { r.q.ready = make([]*Delivery, n) }

	workers(0)
	hold(0)
	assert.Equal(t, 0, r.readCountLocked(), "nobody to hand entries to")

	workers(64)
	assert.Equal(t, 256, r.readCountLocked(), "room for a full batch")

	hold(500)
	ready(10)
	assert.Equal(t, 100, r.readCountLocked(), "workers short of work: read what fits")

	ready(64)
	assert.Equal(t, 0, r.readCountLocked(), "enough queued: wait for a full batch of room")

	hold(344)
	assert.Equal(t, 256, r.readCountLocked(), "a full batch of room again")

	hold(600)
	ready(0)
	assert.Equal(t, 0, r.readCountLocked(), "prefetch full")
}

// Reads stop when the bytes in hand reach MaxBytesInHand, and ask for no
// more entries than the rest of it holds at the size lately seen; the very
// first read asks for one entry.
func TestReadCountKeepsToTheBytesInHand(t *testing.T) {
	r := &reader{b: &Broker{opts: Options{ReadCount: 256, Prefetch: 600, MaxBytesInHand: 10 << 20}}, q: newKeyQueue()}
	r.workers = make([]*worker, 4)
	assert.Equal(t, 1, r.readCountLocked(), "no size known yet")
	r.entryEst = 1 << 20
	assert.Equal(t, 10, r.readCountLocked(), "ten 1 MiB entries fit")
	r.q.add(&Delivery{id: "1-0", size: 9<<20 + 1})
	assert.Equal(t, 1, r.readCountLocked(), "less than one entry's room left: one")
	r.q.add(&Delivery{id: "2-0", size: 1 << 20})
	assert.Equal(t, 0, r.readCountLocked(), "budget used up")
	r.q.finish(r.q.held["1-0"])
	assert.Equal(t, 9, r.readCountLocked(), "room again")
	r.entryEst = 100
	assert.Equal(t, 256, r.readCountLocked(), "small entries: a full batch")
}
