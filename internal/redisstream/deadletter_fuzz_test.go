package redisstream

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
)

// entryMap is a stream entry's fields as go-redis reads them into a map: a
// name given twice keeps its last value.
func entryMap(fields []string) map[string]any {
	m := make(map[string]any, len(fields)/2)
	for i := 0; i+1 < len(fields); i += 2 {
		m[fields[i]] = fields[i+1]
	}
	return m
}

// FuzzDeadLetterRoundTrip: whatever the entry's field names (the dead
// letter's own, "original."-prefixed ones, names that a cut turns into
// those), the dead letter names each field once, its own fields cannot be
// spoofed by the entry, and a letter carried whole reads back as exactly
// the entry: what a replay writes is what Lobby wrote. maxValue is small
// here so names and values are cut.
func FuzzDeadLetterRoundTrip(f *testing.F) {
	f.Add("game_id=g1\nreason=game_finished", "boom", uint8(56))
	f.Add("game_id=g1\ndead_reason=spoof\noriginal.dead_reason=kept", "e", uint8(56))
	f.Add("game_id=g1\noriginal.dead_reason=kept", "e", uint8(56))
	f.Add("game_id=g1\noriginal.original.dead_error=a\noriginal.dead_error=b\ndead_error=c", "e", uint8(56))
	f.Add("game_id=g1\ndead_truncated=spoof", "e", uint8(56))
	f.Add("game_id=g1\ndead_reasonzzzzzzzzz=spoof", strings.Repeat("e", 40), uint8(3))
	f.Add("x=1\noriginal.dead_reasonzzzz=spoof", "e", uint8(12))
	fixtureSeedsWith(f, "runtime-stop-job.json", "decode error", uint8(56))
	c := contractCodec(f, runtimejobs.StopJobsChannelPath)
	f.Fuzz(func(t *testing.T, s, errText string, limit uint8) {
		maxValue := 8 + int(limit)
		values := fieldsFromText(s)
		fields := deadLetterFields(DeadUndecodable, errText, "7-1", 3, 1764160000000, values, c, maxValue)
		seen := map[string]bool{}
		for i := 0; i+1 < len(fields); i += 2 {
			name := fields[i]
			own := i < deadHeaderItems || name == FieldDeadTruncated && i == len(fields)-2
			if !own && IsDeadLetterField(name) {
				t.Fatalf("%q: original field %d named %q, one of the dead letter's own: %q", s, i/2, name, fields)
			}
			if seen[name] {
				t.Fatalf("%q: %q named twice: %q", s, name, fields)
			}
			seen[name] = true
		}
		dl := ReadDeadLetter(entryMap(fields))
		if dl.Reason != DeadUndecodable || dl.OriginalID != "7-1" || dl.DeliveryCount != 3 || dl.DeadAtMS != 1764160000000 ||
			!strings.HasPrefix(errText, dl.Error) {
			t.Fatalf("%q: the dead letter's own fields read as %+v", s, dl)
		}
		if dl.Truncated != "" {
			return
		}
		if dl.Error != errText || len(dl.Original) != len(values) {
			t.Fatalf("%q: whole letter read as %+v", s, dl)
		}
		for name, v := range values {
			if got, ok := dl.Original[name]; !ok || got != v {
				t.Fatalf("%q: field %q read back as %q (%v): %q", s, name, got, ok, fields)
			}
		}
	})
}

// An entry's field already named original.<a dead letter field> used to
// be read back as <that field> (and, next to a field of that name, the
// dead letter named one field twice, so a replay lost one): each now reads
// back under its own name.
func TestDeadLetterKeepsPrefixedNamesApart(t *testing.T) {
	values := map[string]any{"game_id": "g1", "dead_reason": "a", "original.dead_reason": "b",
		"original.original.dead_reason": "c", "dead_truncated": "d", "original.x": "e"}
	fields := deadLetterFields(DeadInvalid, "bad", "1-1", 1, 5, values, nil, 64)
	dl := ReadDeadLetter(entryMap(fields))
	require.Empty(t, dl.Truncated, "nothing was cut: %q", fields)
	assert.Equal(t, DeadInvalid, dl.Reason)
	assert.Equal(t, map[string]string{"game_id": "g1", "dead_reason": "a", "original.dead_reason": "b",
		"original.original.dead_reason": "c", "dead_truncated": "d", "original.x": "e"}, dl.Original)
}

// A long name cut to the bounds may come out as one of the dead letter's
// own (dead_reason): it used to overwrite the dead letter's reason on read.
func TestDeadLetterCutNameCannotPassForItsOwn(t *testing.T) {
	values := map[string]any{"game_id": "g1", "dead_reason_is_spoofed": "spoof"}
	fields := deadLetterFields(DeadInvalid, "bad", "1-1", 1, 5, values, nil, len("dead_reason"))
	dl := ReadDeadLetter(entryMap(fields))
	assert.Equal(t, DeadInvalid, dl.Reason, "%q", fields)
	assert.NotEmpty(t, dl.Truncated)
	assert.Equal(t, "spoof", dl.Original["dead_reason"], "the cut name, read back: %q", fields)
}

// Names cut to the bounds may come out equal (here original.dead_reason,
// dead_reason's name in the letter, cut to 9 bytes, and a field named
// "original."): the first is kept and the other counted as not copied, so
// no name is given twice (found by FuzzDeadLetterRoundTrip).
func TestBoundDeadLetterNamesNoFieldTwice(t *testing.T) {
	values := map[string]any{"dead_reason": "", "original.": ""}
	fields := deadLetterFields(DeadInvalid, "0", "1-1", 1, 5, values, nil, 9)
	names := map[string]int{}
	for i := 0; i+1 < len(fields); i += 2 {
		names[fields[i]]++
	}
	for name, n := range names {
		assert.Equal(t, 1, n, "%q in %q", name, fields)
	}
	assert.Contains(t, ReadDeadLetter(entryMap(fields)).Truncated, "copied 1 of 2 fields")
}
