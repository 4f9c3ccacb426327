package main

import (
	"strconv"
	"strings"
)

// entryID is a stream entry id, <ms>-<seq>, as numbers. A latency run keeps
// one per job in maps whose keys and values hold no pointers, so the
// garbage collector never scans them: the in-process pipelines share this
// process's collector, and with the ids as strings a collection also had
// to mark rtbench's own bookkeeping while their jobs were in flight.
type entryID struct{ ms, seq uint64 }

// parseEntryID reads an entry id given as a string; ok is false for
// anything else.
func parseEntryID(v any) (entryID, bool) {
	s, ok := v.(string)
	if !ok {
		return entryID{}, false
	}
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		return entryID{}, false
	}
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	return entryID{a, b}, err1 == nil && err2 == nil
}
