package redisstream

import (
	"fmt"
	"sync"
	"time"
)

// commitFailures remembers entries whose commit Redis refused (a target key
// of the wrong type, say), so Health reports the problem while it lasts.
// Such an entry is not acknowledged and nothing of it is written; it stays
// pending and comes back with the next claim, so a lasting problem keeps
// its record fresh. A record is dropped when the entry is committed or
// found gone, or when it was not refreshed for ttl (the entry went to
// another consumer, or the problem was fixed elsewhere).
type commitFailures struct {
	ttl time.Duration

	mu   sync.Mutex
	byID map[string]commitFailure // by stream and entry id
}

type commitFailure struct {
	stream, id string
	err        error
	at         time.Time
}

func (f *commitFailures) failed(stream, id string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.byID == nil {
		f.byID = map[string]commitFailure{}
	}
	f.byID[stream+"\x00"+id] = commitFailure{stream: stream, id: id, err: err, at: time.Now()}
}

// settled forgets the entry; cheap when nothing failed.
func (f *commitFailures) settled(stream, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.byID) > 0 {
		delete(f.byID, stream+"\x00"+id)
	}
}

// err is the most recent failure still standing, or nil.
func (f *commitFailures) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var last *commitFailure
	now := time.Now()
	for k, c := range f.byID {
		if now.Sub(c.at) > f.ttl {
			delete(f.byID, k)
			continue
		}
		if last == nil || c.at.After(last.at) {
			c := c
			last = &c
		}
	}
	if last == nil {
		return nil
	}
	return fmt.Errorf("%s: entry %s cannot be committed (%d entries): %w", last.stream, last.id, len(f.byID), last.err)
}
