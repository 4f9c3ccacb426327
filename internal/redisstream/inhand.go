package redisstream

import (
	"strings"

	"github.com/redis/go-redis/v9"
)

// Bytes in hand. Prefetch bounds how many entries a channel holds; an
// entry has no size limit of its own in Redis (512 MB a value), so the
// bytes are bounded too: MaxBytesInHand. A read asks for no more entries
// than the rest of the budget holds at the size of the largest entry
// lately read (the first read of a reader, knowing no size yet, asks for
// one), and reads stop when the budget is used up. A read can still bring
// more than the rest of the budget when its entries are larger than those
// before: the bound is the budget plus one read.
//
// Values over MaxFieldSize make an entry undecodable; such a value is kept
// in hand cut to MaxFieldSize+1 bytes (the dead letter copies at most
// MaxFieldSize of it and says it was cut), so a huge entry weighs little
// once read.

// entrySize is the bytes of an entry's field names and values.
func entrySize(values map[string]any) int64 {
	n := int64(0)
	for k, v := range values {
		s, _ := v.(string)
		n += int64(len(k) + len(s))
	}
	return n
}

// cutHeld replaces values over max bytes by a copy of their first max+1
// bytes (a copy: a slice would keep the whole value alive). It changes
// values in place and returns the size kept.
func cutHeld(values map[string]any, max int) int64 {
	n := int64(0)
	for k, v := range values {
		s, _ := v.(string)
		if len(s) > max+1 {
			s = strings.Clone(s[:max+1])
			values[k] = s
		}
		n += int64(len(k) + len(s))
	}
	return n
}

// noteReadSizes updates the entry size reads are planned with: the
// largest entry of this read, or half the former estimate when this read
// had smaller ones (so one large entry does not slow reading for good).
func (r *reader) noteReadSizes(msgs []redis.XMessage) {
	largest := int64(0)
	for _, m := range msgs {
		largest = max(largest, entrySize(m.Values))
	}
	r.mu.Lock()
	r.entryEst = max(r.entryEst/2, largest, 1)
	r.mu.Unlock()
}

// byteCountLocked bounds a read (or a claim, with twice the budget) of up
// to n entries by the bytes left in budget.
func (r *reader) byteCountLocked(n int, budget int64) int {
	left := budget - r.q.bytes
	if left <= 0 {
		return 0
	}
	if r.entryEst <= 0 {
		return min(n, 1) // nothing read yet: learn the size first
	}
	return int(min(int64(n), max(1, left/r.entryEst)))
}
