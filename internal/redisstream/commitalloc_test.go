package redisstream

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The commit script's command is built per batch: its allocations must not
// grow with the entries' ids and fields (each boxed into an interface was
// one allocation, ~25 per entry).
func TestScriptCommandAllocationsDoNotGrowWithEntries(t *testing.T) {
	res := &channelInfo{address: "results", keys: []string{"results"}, maxLen: 100000}
	r := &reader{
		b:  &Broker{opts: Options{Consumer: "c1"}},
		ci: &channelInfo{address: "jobs", keys: []string{"jobs"}, group: "g"},
		q:  newKeyQueue(),
	}
	sh := &shard{key: "jobs"}
	r.shards = []*shard{sh}
	batchOf := func(n int) []commitReq {
		batch := make([]commitReq, n)
		for i := range batch {
			fields := make([]string, 0, 20)
			for f := 0; f < 10; f++ {
				fields = append(fields, fmt.Sprintf("field_%d", f), fmt.Sprintf("value %d of entry %d", f, i))
			}
			batch[i] = commitReq{
				d:    &Delivery{r: r, sh: sh, id: fmt.Sprintf("1700000000000-%d", i)},
				pubs: []publication{{channel: res, fields: fields}},
			}
		}
		return batch
	}
	allocs := func(n int) float64 {
		batch := batchOf(n)
		return testing.AllocsPerRun(20, func() { _ = r.scriptCommand(sh, batch) })
	}
	one, many := allocs(1), allocs(200)
	assert.LessOrEqual(t, many, one+2, "allocations for 200 entries (%v) against 1 (%v)", many, one)

	// After evalsha, hash, key count, 3 keys and 7 batch arguments: the
	// first entry id, as a pointer go-redis writes as its value.
	batch := batchOf(2)
	cmd := r.scriptCommand(sh, batch)
	id, ok := cmd[13].(*string)
	require.True(t, ok, "entry id argument is %T", cmd[13])
	assert.Equal(t, batch[0].d.id, *id)

	// Built at its final size: one more argument than counted doubles the
	// array (a copy of every argument) on each commit.
	for _, n := range []int{1, 2, 200} {
		cmd := r.scriptCommand(sh, batchOf(n))
		assert.Equal(t, len(cmd), cap(cmd), "the command of %d entries", n)
	}
}

// A handler's one publication is buffered in the delivery's own array.
func TestBufferOnePublicationDoesNotAllocate(t *testing.T) {
	d := &Delivery{}
	p := publication{fields: []string{"game_id", "g1"}}
	allocs := testing.AllocsPerRun(100, func() {
		d.pubs = nil // as settleAck and settleNak leave it
		d.buffer(p)
	})
	assert.Zero(t, allocs)
	require.Len(t, d.pubs, 1)
	d.buffer(p)
	assert.Len(t, d.pubs, 2, "a second publication still fits")
}
