package runtimestore

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/stopruntime"
)

// The record hash and the stop scripts' replies are rtmanager's own
// writing, but an operator may edit a hash by hand (HSET from redis-cli)
// and a damaged reply must not be read as a record. These targets hold the
// parsers to: junk gives an error, never a panic or a record that says
// something the input does not.

// FuzzEncodeResult: last_result is written by a hand-made JSON encoder;
// whatever the strings (invalid UTF-8, control bytes, U+2028), it writes
// what json.Marshal writes, and its size estimate is exact.
func FuzzEncodeResult(f *testing.F) {
	f.Add("success", "", "", "pid:1:start:2", "127.0.0.1:8080")
	f.Add("failure", "stop_failed", "a \"b\" \\ <c> & \b\f\n\r\t\x00\x1f\x7f é \u2028\u2029 \xff\xfe \xe2\x80", "", "")
	f.Fuzz(func(t *testing.T, outcome, code, msg, cid, endpoint string) {
		r := stopruntime.StoredResult{Outcome: stopruntime.Outcome(outcome), ErrorCode: code, ErrorMessage: msg,
			ContainerID: cid, EngineEndpoint: endpoint}
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeResult(r); got != string(want) {
			t.Fatalf("encodeResult(%q) = %s, json.Marshal %s", r, got, want)
		}
		for _, s := range []string{outcome, code, msg, cid, endpoint} {
			q, _ := json.Marshal(s)
			if n := jsonStringLen(s); n != len(q) {
				t.Fatalf("jsonStringLen(%q) = %d, written %d", s, n, len(q))
			}
		}
	})
}

// packStop is packLua in Go: the verdict, then each item as <len>:<bytes>.
func packStop(items ...string) string {
	var b strings.Builder
	for _, s := range items {
		b.WriteString(strconv.Itoa(len(s)) + ":" + s)
	}
	return b.String()
}

// FuzzUnpackStop: a stop script's reply is read only when it is a
// verdict, a verdict and the record's fields, or those and the previous
// owner; the items read are the reply's bytes in order, and packed again
// they read the same. Items packed by packLua's rule (the input split at
// NUL) read back exactly, whatever bytes they hold. A record read from a
// reply has the reply's status and numbers.
func FuzzUnpackStop(f *testing.F) {
	f.Add("not_found")
	rec := "stopping\x00c1\x00127.0.0.1:1\x00docker\x0017\x001-0\x00{\"outcome\":\"success\"}\x002-0\x0017"
	f.Add("started\x00" + rec)
	f.Add("taken_over\x00" + rec + "\x000-1")
	f.Add("done\x00\x00\x00\x00\x00x\x00\x00{\x00\x00-")
	f.Add("5:done" + "99999999999999999999:")
	f.Add("-1:")
	f.Fuzz(func(t *testing.T, s string) {
		var items [len(recordFields) + 2]string
		if parts := strings.Split(s, "\x00"); len(parts) <= len(items) {
			n, err := 0, error(nil)
			if _, n, err = unpackStop(packStop(parts...), &items); err == nil && !slices.Equal(items[:n], parts) {
				t.Fatalf("%q packed reads as %q", parts, items[:n])
			}
			if sizeOK := len(parts) == 1 || len(parts) == 1+len(recordFields) || len(parts) == 2+len(recordFields); sizeOK != (err == nil) {
				t.Fatalf("%d items packed: read error %v", len(parts), err)
			}
		}
		verdict, n, err := unpackStop(s, &items)
		if err != nil {
			return
		}
		if n != 1 && n != 1+len(recordFields) && n != 2+len(recordFields) || verdict != items[0] {
			t.Fatalf("%q read as %d items, verdict %q", s, n, verdict)
		}
		// Each item is the bytes after its length and colon.
		rest := s
		for _, it := range items[:n] {
			i := strings.IndexByte(rest, ':')
			if i < 1 || !strings.HasPrefix(rest[i+1:], it) {
				t.Fatalf("%q read as %q: %q is not its next item", s, items[:n], it)
			}
			rest = rest[i+1+len(it):]
		}
		if rest != "" {
			t.Fatalf("%q read as %q: %q left", s, items[:n], rest)
		}
		var again [len(recordFields) + 2]string
		if _, m, err := unpackStop(packStop(items[:n]...), &again); err != nil || !slices.Equal(again[:m], items[:n]) {
			t.Fatalf("%q read as %q, packed again as %q (%v)", s, items[:n], again[:m], err)
		}
		v, rec, extra, err := parseFields("g1", s, true)
		if err != nil {
			if n > 1 && !badInt(items[5]) && !badInt(items[9]) && !badResult(items[7]) {
				t.Fatalf("%q refused though its fields are sound: %v", s, err)
			}
			return
		}
		if v != verdict || rec.GameID != "g1" {
			t.Fatalf("%q read as verdict %q of game %q", s, v, rec.GameID)
		}
		if n == 1 {
			return
		}
		if rec.Status != items[1] || rec.ContainerID != items[2] || rec.LastJobID != items[6] || rec.StoppingJobID != items[8] {
			t.Fatalf("%q read as %+v", s, rec)
		}
		if rec.UpdatedAtMS != intOf(items[5]) || rec.StoppingSinceMS != intOf(items[9]) {
			t.Fatalf("%q: numbers read as %d, %d", s, rec.UpdatedAtMS, rec.StoppingSinceMS)
		}
		if want := items[len(recordFields)+1]; extra != want || n == 1+len(recordFields) && extra != "" {
			t.Fatalf("%q: previous owner read as %q", s, extra)
		}
		var lr stopruntime.StoredResult
		if items[7] != "" {
			_ = json.Unmarshal([]byte(items[7]), &lr)
		}
		if rec.LastResult != lr {
			t.Fatalf("%q: last result read as %+v", s, rec.LastResult)
		}
	})
}

// badInt reports whether a record's integer field fails to parse (empty
// reads as 0).
func badInt(raw string) bool {
	if raw == "" {
		return false
	}
	_, err := strconv.ParseInt(raw, 10, 64)
	return err != nil
}

// badResult reports whether a result field fails to decode (empty reads
// as no result).
func badResult(raw string) bool {
	var r stopruntime.StoredResult
	return raw != "" && json.Unmarshal([]byte(raw), &r) != nil
}

func intOf(raw string) int64 {
	n, _ := strconv.ParseInt(raw, 10, 64)
	return n
}

// FuzzDecodeRecord: a record hash as HGETALL returns it, each line a
// field ("name=value"). It decodes exactly when each number field is empty
// or an integer and each result field empty or a JSON result object; what
// it decodes is the hash's own values.
func FuzzDecodeRecord(f *testing.F) {
	ok := stopruntime.StoredResult{Outcome: "success", ContainerID: "c1", EngineEndpoint: "127.0.0.1:9"}
	f.Add("status=running\ncontainer_id=c1\nengine_endpoint=127.0.0.1:9\nruntime=docker\nupdated_at_ms=17\nengine=demo\n" +
		"last_start_job_id=1-0\nlast_start_result=" + encodeResult(ok))
	f.Add("status=stopping\nstopping_job_id=2-0\nstopping_since_ms=18\nlast_job_id=1-0\nlast_result={\"outcome\":5}")
	f.Add("status=exited\nexit_code=137\noom_killed=1\nfinished_at_ms=19\nfailure_reason=oom\nunhealthy_since_ms=")
	f.Add("status=banana\nupdated_at_ms=1e3\nexit_code=-\nstarting_since_ms=99999999999999999999")
	f.Add("status=starting\nstarting_job_id=3-0\nstarting_since_ms= 5\nlast_result=null")
	f.Fuzz(func(t *testing.T, s string) {
		m := map[string]string{}
		for _, line := range strings.Split(s, "\n") {
			k, v, _ := strings.Cut(line, "=")
			m[k] = v
		}
		rec, err := decodeRecord("g1", m)
		sound := true
		for _, name := range []string{fUpdatedAtMS, fStoppingSinceMS, fStartingSinceMS, fExitCode, fFinishedAtMS, fUnhealthySinceMS} {
			sound = sound && !badInt(m[name])
		}
		results := map[string]stopruntime.StoredResult{}
		for _, name := range []string{fLastResult, fLastStartResult} {
			sound = sound && !badResult(m[name])
			var r stopruntime.StoredResult
			if m[name] != "" {
				_ = json.Unmarshal([]byte(m[name]), &r)
			}
			results[name] = r
		}
		if err != nil {
			if sound {
				t.Fatalf("%q refused though its fields are sound: %v", s, err)
			}
			return
		}
		if !sound {
			t.Fatalf("%q decoded though a field is junk: %+v", s, rec)
		}
		strs := map[string]string{fStatus: rec.Status, fContainerID: rec.ContainerID, fEngineEndpoint: rec.EngineEndpoint,
			fRuntime: rec.Runtime, fLastJobID: rec.LastJobID, fStoppingJobID: rec.StoppingJobID, fEngine: rec.Engine,
			fStartingJobID: rec.StartingJobID, fLastStartJobID: rec.LastStartJobID, fFailureReason: rec.FailureReason}
		for name, got := range strs {
			if got != m[name] {
				t.Fatalf("%q: %s read as %q", s, name, got)
			}
		}
		ints := map[string]int64{fUpdatedAtMS: rec.UpdatedAtMS, fStoppingSinceMS: rec.StoppingSinceMS,
			fStartingSinceMS: rec.StartingSinceMS, fFinishedAtMS: rec.FinishedAtMS, fUnhealthySinceMS: rec.UnhealthySinceMS}
		for name, got := range ints {
			if got != intOf(m[name]) {
				t.Fatalf("%q: %s read as %d", s, name, got)
			}
		}
		if (rec.ExitCode == nil) != (m[fExitCode] == "") || rec.ExitCode != nil && *rec.ExitCode != intOf(m[fExitCode]) {
			t.Fatalf("%q: exit code read as %v", s, rec.ExitCode)
		}
		if rec.OOMKilled != (m[fOOMKilled] == "1") || rec.GameID != "g1" {
			t.Fatalf("%q read as %+v", s, rec)
		}
		if rec.LastResult != results[fLastResult] || rec.LastStartResult != results[fLastStartResult] {
			t.Fatalf("%q: results read as %+v, %+v", s, rec.LastResult, rec.LastStartResult)
		}
	})
}

// FuzzGameIDOf: the records are found by SCAN, so any key under the prefix
// (one an operator made by hand, say) is read as a record key. A key is a
// game's record exactly when it is the key the store addresses for a
// valid game id, in this layout.
func FuzzGameIDOf(f *testing.F) {
	f.Add("rtmanager:runtime:{g1}", "g1", uint8(0))
	f.Add("rtmanager:{rt-3}:runtime:g1", "galaxy.eu-1:42", uint8(16))
	f.Add("rtmanager:runtime:{a}b}", "a}b", uint8(0))
	f.Add("rtmanager:{rt-0}:runtime:{x}", "", uint8(2))
	doc, err := api.Load()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key, id string, shards uint8) {
		l, err := api.NewLayout(doc, 1+int(shards%17), shards >= 17)
		if err != nil {
			t.Fatal(err)
		}
		k := newKeys("rtmanager:", l)
		if got, ok := k.gameIDOf(key); ok && (!stopruntime.ValidGameID(got) || k.record(got) != key) {
			t.Fatalf("%q read as the record of game %q (%d shards)", key, got, l.Shards)
		}
		if !stopruntime.ValidGameID(id) {
			return
		}
		if got, ok := k.gameIDOf(k.record(id)); !ok || got != id {
			t.Fatalf("record %q of game %q read as %q, %v", k.record(id), id, got, ok)
		}
	})
}
