package redisstream

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// respBulk is s as a RESP bulk string.
func respBulk(s string) string { return fmt.Sprintf("$%d\r\n%s\r\n", len(s), s) }

// FuzzReadRawRoundTrip: a well-formed reply, RESP2 or RESP3, of entries
// built from the input ("\n\n" between entries, "k=v" lines, "-" a
// deleted entry) reads as go-redis would read it (the last value of a
// name repeated), with every repeated name reported, in order of first
// appearance, and whether its values differ.
func FuzzReadRawRoundTrip(f *testing.F) {
	f.Add("game_id=g1\nreason=game_finished\n\n-\n\ngame_id=g2\ngame_id=g3", true)
	f.Add("a=1\na=1\nb=\r\n\n\n=\n\n-", false)
	f.Add("", false)
	f.Fuzz(func(t *testing.T, s string, resp3 bool) {
		type pair struct{ k, v string }
		var entries [][]pair // nil: deleted
		for _, text := range strings.Split(s, "\n\n") {
			if text == "-" {
				entries = append(entries, nil)
				continue
			}
			e := []pair{}
			for _, line := range strings.Split(text, "\n") {
				k, v, _ := strings.Cut(line, "=")
				e = append(e, pair{k, v})
			}
			entries = append(entries, e)
		}
		var b strings.Builder
		if resp3 {
			b.WriteString("%1\r\n" + respBulk("s"))
		} else {
			b.WriteString("*1\r\n*2\r\n" + respBulk("s"))
		}
		fmt.Fprintf(&b, "*%d\r\n", len(entries))
		for i, e := range entries {
			b.WriteString("*2\r\n" + respBulk(fmt.Sprintf("1-%d", i)))
			switch {
			case e == nil && resp3:
				b.WriteString("_\r\n")
			case e == nil:
				b.WriteString("*-1\r\n")
			default:
				fmt.Fprintf(&b, "*%d\r\n", 2*len(e))
				for _, p := range e {
					b.WriteString(respBulk(p.k) + respBulk(p.v))
				}
			}
		}
		got, err := parseReadRaw([]byte(b.String()))
		if err != nil {
			t.Fatalf("%q: %v", b.String(), err)
		}
		if len(got) != 1 || got[0].Stream != "s" || len(got[0].Messages) != len(entries) {
			t.Fatalf("%q read as %+v", b.String(), got)
		}
		for i, e := range entries {
			m := got[0].Messages[i]
			id := fmt.Sprintf("1-%d", i)
			if m.ID != id || (e == nil) != (m.Values == nil) {
				t.Fatalf("entry %d read as %+v", i, m)
			}
			want := map[string]any{}
			first := map[string]string{}
			var dups []fieldDup
			at := map[string]int{}
			for _, p := range e {
				want[p.k] = p.v
				v0, seen := first[p.k]
				if !seen {
					first[p.k] = p.v
					continue
				}
				j, ok := at[p.k]
				if !ok {
					j = len(dups)
					at[p.k] = j
					dups = append(dups, fieldDup{name: p.k, n: 1})
				}
				dups[j].n++
				dups[j].differ = dups[j].differ || p.v != v0
			}
			if e != nil && !reflect.DeepEqual(m.Values, want) {
				t.Fatalf("entry %d read as %v, want %v", i, m.Values, want)
			}
			if !reflect.DeepEqual(got[0].dups[id], dups) {
				t.Fatalf("entry %d: duplicates %+v, want %+v", i, got[0].dups[id], dups)
			}
		}
	})
}
