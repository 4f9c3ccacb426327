package redisstream

// The hand-written JSON scanner behind encode's fast path: it reads the flat
// objects the generated code marshals without encoding/json's reflection.

import (
	"bytes"
	"sort"
)

// encodeFlat is encode's fast path for what the generated code marshals: one
// flat JSON object whose values are strings without escapes, numbers,
// booleans or null, each key once. It gives exactly what the general path
// gives (fields in contract order, then the others sorted; null dropped;
// numbers as written) without decoding into a map of interfaces; anything
// else (escapes, nested values, non-ASCII, duplicate keys, bad syntax)
// reports !ok and takes the general path.
func (c *codec) encodeFlat(payload []byte) ([]string, bool) {
	var vals [16]string
	var found, seen [16]bool
	if len(c.props) > len(vals) {
		return nil, false
	}
	var extra []string     // name, value pairs the contract does not name
	var extraKeys []string // every such name, null ones too
	i := skipSpace(payload, 0)
	if i >= len(payload) || payload[i] != '{' {
		return nil, false
	}
	// One copy of the payload; every value below is a substring of it.
	ps := string(payload)
	i = skipSpace(payload, i+1)
	if i < len(payload) && payload[i] == '}' {
		i++
	} else {
		for {
			key, j, ok := flatString(payload, ps, i)
			if !ok {
				return nil, false
			}
			j = skipSpace(payload, j)
			if j >= len(payload) || payload[j] != ':' {
				return nil, false
			}
			j = skipSpace(payload, j+1)
			var val string
			isNull := false
			switch {
			case j >= len(payload):
				return nil, false
			case payload[j] == '"':
				val, j, ok = flatString(payload, ps, j)
			case payload[j] == 't' && bytes.HasPrefix(payload[j:], []byte("true")):
				val, j = "true", j+4
			case payload[j] == 'f' && bytes.HasPrefix(payload[j:], []byte("false")):
				val, j = "false", j+5
			case payload[j] == 'n' && bytes.HasPrefix(payload[j:], []byte("null")):
				isNull, j = true, j+4
			default:
				var end int
				end, ok = scanNumber(payload, j)
				val, j = ps[j:end], end
			}
			if !ok {
				return nil, false
			}
			if idx, known := c.byName[key]; known {
				if seen[idx] {
					return nil, false // duplicate key: the general path decides
				}
				seen[idx] = true
				if !isNull {
					found[idx], vals[idx] = true, val
				}
			} else {
				for _, k := range extraKeys {
					if k == key {
						return nil, false
					}
				}
				extraKeys = append(extraKeys, key)
				if !isNull {
					extra = append(extra, key, val)
				}
			}
			j = skipSpace(payload, j)
			if j >= len(payload) {
				return nil, false
			}
			if payload[j] == '}' {
				i = j + 1
				break
			}
			if payload[j] != ',' {
				return nil, false
			}
			i = skipSpace(payload, j+1)
		}
	}
	if skipSpace(payload, i) != len(payload) {
		return nil, false
	}
	n := 0
	for k := range c.props {
		if found[k] {
			n++
		}
	}
	out := make([]string, 0, 2*n+len(extra))
	for k := range c.props {
		if found[k] {
			out = append(out, c.props[k].name, vals[k])
		}
	}
	if len(extra) > 0 {
		type kv struct{ k, v string }
		var rest []kv
		for k := 0; k < len(extra); k += 2 {
			rest = append(rest, kv{extra[k], extra[k+1]})
		}
		sort.Slice(rest, func(a, b int) bool { return rest[a].k < rest[b].k })
		for _, e := range rest {
			out = append(out, e.k, e.v)
		}
	}
	return out, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// flatString reads a JSON string at b[i] made of printable ASCII without
// escapes; it returns its text and the index after the closing quote. The
// text is a substring of ps, b as a string, so it costs no allocation.
func flatString(b []byte, ps string, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch ch := b[j]; {
		case ch == '"':
			return ps[i+1 : j], j + 1, true
		case ch == '\\' || ch < 0x20 || ch >= 0x80:
			return "", j, false
		}
	}
	return "", len(b), false
}

// scanNumber reads a JSON number at b[i] (the grammar of RFC 8259) and
// returns the index after it.
func scanNumber(b []byte, i int) (int, bool) {
	j := i
	if j < len(b) && b[j] == '-' {
		j++
	}
	switch {
	case j < len(b) && b[j] == '0':
		j++
	case j < len(b) && b[j] >= '1' && b[j] <= '9':
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
	default:
		return j, false
	}
	if j < len(b) && b[j] == '.' {
		j++
		start := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == start {
			return j, false
		}
	}
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		start := j
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == start {
			return j, false
		}
	}
	return j, true
}
