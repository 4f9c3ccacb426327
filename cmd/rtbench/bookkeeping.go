package main

import "galaxy/rtmanager/internal/redisstream"

// entryID is a stream entry id as numbers. A latency run keeps one per job
// in maps whose keys and values hold no pointers, so the garbage collector
// never scans them: the in-process pipelines share this process's
// collector, and with the ids as strings a collection also had to mark
// rtbench's own bookkeeping while their jobs were in flight.
type entryID = redisstream.EntryID

// parseEntryID reads an entry id given as a string; ok is false for
// anything else.
func parseEntryID(v any) (entryID, bool) {
	s, ok := v.(string)
	if !ok {
		return entryID{}, false
	}
	return redisstream.ParseEntryID(s)
}
