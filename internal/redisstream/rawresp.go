package redisstream

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// go-redis's generic reply reader makes two allocations per string of a
// reply (the string and its interface box) and two per array: ~20 per
// stop job read. The read loop's XREADGROUP reply is instead taken as raw
// RESP bytes (redis.RawCmd) and walked here: each entry becomes one string
// (its id, names and values are substrings of it, so an entry held long
// keeps only its own bytes alive), plus the fields map.

// errReplyIsError: the reply is a Redis error; the caller sends the
// command again through go-redis's own path, which follows redirects and
// returns the error as go-redis does (an error reply means the command did
// nothing, so sending it again is harmless).
var errReplyIsError = errors.New("redis error reply")

// respWalker reads a RESP2 or RESP3 reply held in one byte slice.
type respWalker struct {
	b []byte
	i int
}

// header reads a type byte and the number on its line: the length of a
// bulk string or aggregate, -1 for a null. A simple string's text is left
// for str.
func (w *respWalker) header() (byte, int, error) {
	if w.i >= len(w.b) {
		return 0, 0, errors.New("read reply: truncated")
	}
	t := w.b[w.i]
	end := w.i + 1
	for end+1 < len(w.b) && (w.b[end] != '\r' || w.b[end+1] != '\n') {
		end++
	}
	if end+1 >= len(w.b) {
		return 0, 0, errors.New("read reply: truncated line")
	}
	line := w.b[w.i+1 : end]
	switch t {
	case '-', '!':
		return t, 0, errReplyIsError
	case '_':
		w.i = end + 2
		return t, -1, nil
	case '+':
		// The text is read by str.
		return t, len(line), nil
	case '$', '*', '%', '~':
		n, err := strconv.Atoi(string(line))
		if err != nil {
			return 0, 0, fmt.Errorf("read reply: bad length %q", line)
		}
		w.i = end + 2
		// Every byte of a string and every item of an aggregate (a map's
		// pair twice) takes at least a byte of what is left: a larger
		// count is a damaged reply, and must not overflow an index or a
		// capacity computed from it.
		limit := len(w.b) - w.i
		if t == '%' {
			limit /= 2
		}
		if n > limit {
			return 0, 0, fmt.Errorf("read reply: length %d beyond the reply", n)
		}
		return t, n, nil
	}
	return 0, 0, fmt.Errorf("read reply: unexpected type %q", t)
}

// span reads a string item and returns where its bytes are in w.b (start
// -1 for a null).
func (w *respWalker) span() (int, int, error) {
	t, n, err := w.header()
	if err != nil {
		return 0, 0, err
	}
	switch {
	case t == '+':
		start := w.i + 1
		w.i = start + n + 2
		return start, start + n, nil
	case n < 0 && (t == '$' || t == '_' || t == '*'):
		return -1, -1, nil
	case t != '$':
		return 0, 0, fmt.Errorf("read reply: %q where a string was expected", t)
	}
	start := w.i
	if start+n+2 > len(w.b) {
		return 0, 0, errors.New("read reply: truncated string")
	}
	w.i = start + n + 2
	return start, start + n, nil
}

// aggregate reads an array (or, RESP3, a map or set) header: its item
// count (a map's pairs count twice), -1 for a null.
func (w *respWalker) aggregate() (int, error) {
	t, n, err := w.header()
	if err != nil {
		return 0, err
	}
	switch {
	case n < 0:
		return -1, nil
	case t == '*' || t == '~':
		return n, nil
	case t == '%':
		return 2 * n, nil
	}
	return 0, fmt.Errorf("read reply: %q where an array was expected", t)
}

// parseReadRaw reads an XREADGROUP reply: RESP2 (an array of [stream,
// entries]) or RESP3 (a map from stream to entries). A null reply (the
// block ended with nothing read) is redis.Nil; an error reply is
// errReplyIsError.
func parseReadRaw(b []byte) ([]streamRead, error) {
	w := &respWalker{b: b}
	if len(b) > 0 && b[0] == '%' {
		n, err := w.aggregate()
		if err != nil {
			return nil, err
		}
		out := make([]streamRead, 0, min(n/2, len(b)))
		for k := 0; k < n; k += 2 {
			s, err := w.stream()
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	n, err := w.aggregate()
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, redis.Nil
	}
	out := make([]streamRead, 0, min(n, len(b)))
	for k := 0; k < n; k++ {
		if m, err := w.aggregate(); err != nil || m != 2 {
			return nil, fmt.Errorf("read reply: stream item of %d items (%v)", m, err)
		}
		s, err := w.stream()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// stream reads a stream's name and its entries.
func (w *respWalker) stream() (streamRead, error) {
	start, end, err := w.span()
	if err != nil || start < 0 {
		return streamRead{}, fmt.Errorf("read reply: stream name (%v)", err)
	}
	s := streamRead{XStream: redis.XStream{Stream: string(w.b[start:end])}}
	n, err := w.aggregate()
	if err != nil {
		return streamRead{}, err
	}
	// Capacities are bounded by the reply's size: a length in a damaged
	// reply must not make a huge allocation.
	s.Messages = make([]redis.XMessage, 0, min(max(n, 0), len(w.b)-w.i))
	var spans []int // reused: start and end of the id, then of each name and value
	for e := 0; e < n; e++ {
		if m, err := w.aggregate(); err != nil || m != 2 {
			return streamRead{}, fmt.Errorf("read reply: entry of %d items (%v)", m, err)
		}
		spans = spans[:0]
		idStart, idEnd, err := w.span()
		if err != nil || idStart < 0 {
			return streamRead{}, fmt.Errorf("read reply: entry id (%v)", err)
		}
		spans = append(spans, idStart, idEnd)
		nf, err := w.aggregate()
		if err != nil {
			return streamRead{}, err
		}
		if nf > 0 && nf%2 != 0 {
			return streamRead{}, fmt.Errorf("read reply: %d field items", nf)
		}
		for f := 0; f < nf; f++ {
			a, z, err := w.span()
			if err != nil {
				return streamRead{}, err
			}
			if a < 0 {
				a, z = idEnd, idEnd // a null name or value reads as ""
			}
			spans = append(spans, a, z)
		}
		// One string for the entry; its parts are substrings.
		base := idStart
		blob := string(w.b[base:w.i])
		part := func(k int) string { return blob[spans[2*k]-base : spans[2*k+1]-base] }
		m := redis.XMessage{ID: part(0)}
		if nf >= 0 {
			m.Values = make(map[string]any, nf/2) // nf items were read
			for f := 0; f < nf; f += 2 {
				m.Values[part(1+f)] = part(2 + f)
			}
			if len(m.Values) != nf/2 {
				flat := make([]any, nf)
				for f := range flat {
					flat[f] = part(1 + f)
				}
				if s.dups == nil {
					s.dups = entryDups{}
				}
				s.dups[m.ID] = duplicates(flat)
			}
		}
		s.Messages = append(s.Messages, m)
	}
	return s, nil
}
