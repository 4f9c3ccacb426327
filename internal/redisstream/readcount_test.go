package redisstream

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// Under load a read waits for ReadCount of room; while fewer entries are
// ready than there are workers it reads whatever room there is.
func TestReadCountWaitsForAFullBatchOnlyUnderLoad(t *testing.T) {
	r := &reader{b: &Broker{opts: Options{ReadCount: 256, Prefetch: 600}}, q: newKeyQueue()}
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
