package console

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Streams that are not indexed by what a page looks for (a game's results,
// a job's dead letter) are filtered from a bounded number of entries, read
// in chunks of scanChunk: one XRANGE of a few hundred entries costs Redis
// well under a millisecond, so the jobs' own commands are served between
// the chunks instead of waiting behind one long read.
const scanChunk = 200

// scan is one bounded walk over a stream.
type scan struct {
	stream string
	// from is where the walk starts: an entry id (inclusive), or "" for
	// the newest end (backward) or the oldest (forward).
	from string
	// backward walks from newest to oldest.
	backward bool
	// budget bounds the entries read; want the matches kept.
	budget, want int
	match        func(redis.XMessage) bool
}

// scanned is what a walk found: the matches, how many entries it read, and
// where a further walk would go on ("" when the stream ended).
type scanned struct {
	matches []redis.XMessage
	read    int
	next    string
	// first is the id of the first entry read ("" when none).
	first string
}

func (c *Console) scan(ctx context.Context, s scan) (scanned, error) {
	var out scanned
	bound := s.from
	exclusive := false
	for out.read < s.budget {
		n := int64(min(scanChunk, s.budget-out.read))
		var msgs []redis.XMessage
		var err error
		if s.backward {
			end := "+"
			if bound != "" {
				end = bound
				if exclusive {
					end = "(" + bound
				}
			}
			msgs, err = c.rdb.XRevRangeN(ctx, s.stream, end, "-", n).Result()
		} else {
			start := "-"
			if bound != "" {
				start = bound
				if exclusive {
					start = "(" + bound
				}
			}
			msgs, err = c.rdb.XRangeN(ctx, s.stream, start, "+", n).Result()
		}
		if err != nil {
			return out, fmt.Errorf("read %s: %w", s.stream, err)
		}
		if out.read == 0 && len(msgs) > 0 {
			out.first = msgs[0].ID
		}
		out.read += len(msgs)
		for _, m := range msgs {
			if s.match(m) {
				out.matches = append(out.matches, m)
				if len(out.matches) == s.want {
					out.next = m.ID
					return out, nil
				}
			}
		}
		if int64(len(msgs)) < n {
			return out, nil // the stream ended
		}
		bound, exclusive = msgs[len(msgs)-1].ID, true
		out.next = bound
	}
	return out, nil
}
