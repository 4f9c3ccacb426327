package redisstream

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// The set of answered ids remembers answeredKeep ids, forgets the oldest,
// and keeps none of the strings it is given alive: an id read from a reply
// is a substring of its whole entry.
func TestAnsweredIDsKeepNoEntryAlive(t *testing.T) {
	var a answeredIDs
	assert.False(t, a.has("1-1"))
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	pad := strings.Repeat("x", 1000)
	for i := 0; i < answeredKeep; i++ {
		entry := fmt.Sprintf("%d-0 %s", i+1, pad) // an id inside a 1 KB entry
		a.add(entry[:strings.IndexByte(entry, ' ')])
	}
	kept := heap() - before
	assert.Less(t, kept, uint64(answeredKeep*100), "%d bytes kept for %d ids", kept, answeredKeep)

	assert.True(t, a.has("1-0"))
	assert.True(t, a.has(fmt.Sprintf("%d-0", answeredKeep)))
	a.add("99999999-5")
	assert.False(t, a.has("1-0"), "the oldest is forgotten")
	assert.True(t, a.has("2-0"))
	assert.True(t, a.has("99999999-5"))
	assert.False(t, a.has("99999999-6"))
	assert.False(t, a.has("not-an-id"))
}
