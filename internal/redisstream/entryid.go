package redisstream

import (
	"strconv"
	"strings"
)

// EntryID is a stream entry id, <ms>-<seq>, as numbers: a map keyed by
// them holds no pointers for the garbage collector to follow.
type EntryID struct{ MS, Seq uint64 }

// ParseEntryID reads an entry id as Redis takes one: <ms>-<seq>, each part
// decimal digits of at most 2^64-1 (no sign); false for anything else.
func ParseEntryID(s string) (EntryID, bool) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		return EntryID{}, false
	}
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	return EntryID{a, b}, err1 == nil && err2 == nil
}
