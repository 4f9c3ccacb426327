package redisstream

import (
	"fmt"
	"sort"
	"unicode/utf8"
)

// Bounds of what a dead letter copies of its entry. A hostile entry may
// carry thousands of fields or values of many MiB; its dead letter keeps the
// evidence, not the whole of it, so neither rtmanager's memory nor Redis's
// grows with it, and the commit script never unpacks more than
// maxPublicationItems items.
const (
	// deadMaxFields is the most original fields a dead letter copies.
	deadMaxFields = 1024
	// deadMaxBytes bounds the copied names and values together.
	deadMaxBytes = 1 << 20
	// deadHeaderItems are the items deadLetter puts in front of the
	// original fields: DeadLetterFields and their values.
	deadHeaderItems = 10
)

// boundDeadLetter returns the fields of a dead letter (as deadLetterFields
// builds them: the header items, then original name/value pairs, each name
// under deadName) cut to the
// bounds: dead_error and each copied value at most maxValue bytes, at most
// deadMaxFields original fields and deadMaxBytes copied bytes. Fields the
// codec knows go first, so the job's own fields survive a flood of extra
// ones. When something was cut, a dead_truncated field says what. Fields
// within the bounds are returned as they are.
func boundDeadLetter(fields []string, c *codec, maxValue int) []string {
	if len(fields) < deadHeaderItems || fields[0] != FieldDeadReason || !needsBound(fields, maxValue) {
		return fields
	}
	out := make([]string, 0, deadHeaderItems+2*min(deadMaxFields, (len(fields)-deadHeaderItems)/2)+2)
	out = append(out, fields[:deadHeaderItems]...)
	cutErr := len(out[3]) > maxValue
	out[3] = cutUTF8(out[3], maxValue)

	type pair struct {
		name, value string
		known       bool
	}
	pairs := make([]pair, 0, (len(fields)-deadHeaderItems)/2)
	for i := deadHeaderItems; i+1 < len(fields); i += 2 {
		p := pair{name: fields[i], value: fields[i+1]}
		if c != nil {
			_, p.known = c.byName[p.name]
		}
		pairs = append(pairs, p)
	}
	// Known fields first, then by name: the same entry gives the same dead
	// letter whatever the order of the map it came from.
	sort.Slice(pairs, func(a, b int) bool {
		if pairs[a].known != pairs[b].known {
			return pairs[a].known
		}
		return pairs[a].name < pairs[b].name
	})
	copied, cutValues, budget := 0, 0, deadMaxBytes
	// A cut name may come out as another field's: the first one written
	// keeps it, so no name is given twice (a reader would keep one value).
	written := make(map[string]bool, len(pairs))
	for _, p := range pairs {
		if copied == deadMaxFields || budget <= 0 {
			break
		}
		name := cutUTF8(p.name, min(maxValue, budget))
		v := cutUTF8(p.value, min(maxValue, budget-len(name)))
		cutName := len(name) < len(p.name)
		if cutName {
			// Cut, the name may read as one of the dead letter's own.
			name = deadName(name)
		}
		if written[name] {
			continue
		}
		written[name] = true
		if cutName || len(v) < len(p.value) {
			cutValues++
		}
		out = append(out, name, v)
		budget -= len(name) + len(v)
		copied++
	}
	note := fmt.Sprintf("copied %d of %d fields", copied, len(pairs))
	if cutValues > 0 {
		note += fmt.Sprintf(", %d cut to %d bytes", cutValues, maxValue)
	}
	if cutErr {
		note += fmt.Sprintf(", dead_error cut to %d bytes", maxValue)
	}
	return append(out, FieldDeadTruncated, note)
}

// needsBound is the cheap test that keeps ordinary dead letters as they are.
func needsBound(fields []string, maxValue int) bool {
	if (len(fields)-deadHeaderItems)/2 > deadMaxFields {
		return true
	}
	total := 0
	for i, f := range fields {
		if len(f) > maxValue {
			return true
		}
		if i >= deadHeaderItems {
			total += len(f)
		}
	}
	return total > deadMaxBytes
}

// cutUTF8 cuts s to at most n bytes, not inside a UTF-8 sequence when s is
// valid UTF-8 there (invalid bytes are cut where they fall).
func cutUTF8(s string, n int) string {
	if n < 0 {
		n = 0
	}
	if len(s) <= n {
		return s
	}
	for i := n; i > n-utf8.UTFMax && i > 0; i-- {
		if utf8.RuneStart(s[i]) {
			return s[:i]
		}
	}
	return s[:n]
}
