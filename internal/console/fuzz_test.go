package console

import (
	"math/big"
	"strings"
	"testing"

	"galaxy/rtmanager/api"
)

// What a URL gives the console (?after=, Last-Event-ID, ?before=, ?q=, a
// replay form's ids) is anyone's text. These targets hold its parsers to:
// what they accept is what Redis accepts, and it names itself back.

// redisEntryID is an independent reading of Redis's rule: <ms>-<seq>,
// decimal digits, each part at most 2^64-1.
func redisEntryID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	return ok && redisUint64(ms) && redisUint64(seq)
}

var maxUint64 = new(big.Int).SetUint64(^uint64(0))

func redisUint64(s string) bool {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return false
	}
	n, ok := new(big.Int).SetString(s, 10)
	return ok && n.Cmp(maxUint64) <= 0
}

// FuzzReadCursor: a cursor is read exactly when it is one entry id Redis
// takes per shard; read, it prints as it was given.
func FuzzReadCursor(f *testing.F) {
	f.Add("0-0", uint8(1))
	f.Add("1764160000000-0,0-0,18446744073709551615-18446744073709551615", uint8(3))
	f.Add("18446744073709551616-0", uint8(1))
	f.Add("1-1,", uint8(2))
	f.Add("+1-1", uint8(1))
	f.Add("1-1 ", uint8(1))
	f.Fuzz(func(t *testing.T, s string, n uint8) {
		shards := 1 + int(n%16)
		cur, ok := readCursor(s, shards)
		ids := strings.Split(s, ",")
		want := len(ids) == shards
		for _, id := range ids {
			want = want && redisEntryID(id)
		}
		if ok != want {
			t.Fatalf("readCursor(%q, %d) ok=%v, want %v", s, shards, ok, want)
		}
		if ok && (len(cur) != shards || cur.String() != s) {
			t.Fatalf("readCursor(%q, %d) = %q, prints %q", s, shards, cur, cur.String())
		}
	})
}

// FuzzParseShardRef: a reference is read exactly when it names a shard of
// the layout (canonically) and an id an entry can have (Redis takes it and
// it is not 0-0); shardRef writes it back as it was given. What shardRef
// writes for such an id is read back, and the jobs search takes it as a job.
func FuzzParseShardRef(f *testing.F) {
	f.Add("1764160000000-0", "1-1", uint8(0), uint8(1), false)
	f.Add("3/1764160000000-0", "5-0", uint8(3), uint8(16), true)
	f.Add("03/1-0", "0-0", uint8(1), uint8(16), true)
	f.Add("0/18446744073709551616-0", "18446744073709551615-18446744073709551615", uint8(0), uint8(2), true)
	f.Add("0-0", "00-000", uint8(0), uint8(1), false)
	f.Add("-1/1-0", "1-0", uint8(0), uint8(4), true)
	f.Fuzz(func(t *testing.T, ref, id string, n, s uint8, sharded bool) {
		shards := 1 + int(s%16)
		if !sharded {
			shards = 1
		}
		k := keys{layout: api.Layout{Sharded: sharded}, results: make([]string, shards)}
		gotN, gotID, ok := k.parseShardRef(ref)
		if ok {
			if gotN < 0 || gotN >= shards || !redisEntryID(gotID) || strings.Trim(gotID, "0") == "-" {
				t.Fatalf("parseShardRef(%q) = %d, %q in %d shards", ref, gotN, gotID, shards)
			}
			// Written back as given; or, for shard 0, the other spelling
			// (bare where the layout writes 0/, or 0/ where it writes bare).
			if back := k.shardRef(gotN, gotID); back != ref && (gotN != 0 || ref != gotID) && ref != "0/"+back {
				t.Fatalf("parseShardRef(%q) = %d, %q, written back as %q", ref, gotN, gotID, back)
			}
			if !isJobRef(ref) {
				t.Fatalf("parseShardRef takes %q, the jobs search does not", ref)
			}
		}
		canon := redisEntryID(id) && strings.Trim(id, "0") != "-"
		w := k.shardRef(int(n)%shards, id)
		gotN, gotID, ok = k.parseShardRef(w)
		if ok != canon || ok && (gotN != int(n)%shards || gotID != id) {
			t.Fatalf("shardRef(%d, %q) = %q read back as %d, %q, %v", int(n)%shards, id, w, gotN, gotID, ok)
		}
	})
}
