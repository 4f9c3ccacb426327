package redisstream

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"galaxy/rtmanager/gen/runtimejobs"
)

// fieldsFromText turns "k=v\nk=v" into a field map: the fuzzer mutates one
// string, the codec sees arbitrary names, values and counts.
func fieldsFromText(s string) map[string]any {
	m := map[string]any{}
	for _, line := range strings.Split(s, "\n") {
		k, v, _ := strings.Cut(line, "=")
		m[k] = v
	}
	return m
}

func fuzzSeeds(f *testing.F) {
	f.Add("game_id=g1\nreason=game_finished")
	f.Add("game_id= g1 \nreason=admin_request\nrequested_at_ms=")
	f.Add("game_id=g1\nreason=game_finished\nrequested_at_ms=-0")
	f.Add("game_id=g\xff\nreason=x\nrequested_at_ms=1e3")
	fixtureSeeds(f, "runtime-stop-job.json")
}

// fixtureSeeds adds every fixture (accepted and refused) of a file of
// testdata/contract as a seed in fieldsFromText's form.
func fixtureSeeds(f *testing.F, name string) { fixtureSeedsWith(f, name) }

// fixtureSeedsWith is fixtureSeeds for a target that takes more arguments
// than the fields: each seed is the fields, then more.
func fixtureSeedsWith(f *testing.F, name string, more ...any) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "contract", name))
	if err != nil {
		f.Fatal(err)
	}
	var file struct {
		Accept, Refuse []struct {
			Fields map[string]string `json:"fields"`
		}
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		f.Fatal(err)
	}
	for _, fx := range append(file.Accept, file.Refuse...) {
		var b strings.Builder
		// Sorted: the same seeds on every run.
		for _, k := range slices.Sorted(maps.Keys(fx.Fields)) {
			b.WriteString(k + "=" + fx.Fields[k] + "\n")
		}
		f.Add(append([]any{strings.TrimSuffix(b.String(), "\n")}, more...)...)
	}
}

// FuzzDecodeStopJob: whatever the fields, decoding never panics, always
// yields valid JSON, and a clean decode always fits the generated type with
// the required fields present.
func FuzzDecodeStopJob(f *testing.F) {
	fuzzSeeds(f)
	c := contractCodec(f, runtimejobs.StopJobsChannelPath)
	f.Fuzz(func(t *testing.T, s string) {
		values, d, job := decodeFitting[runtimejobs.RuntimeStopJobSchema](t, c, s)
		if d.err == nil {
			if values["game_id"] == nil || values["reason"] == nil {
				t.Fatalf("clean decode without required fields: %q", s)
			}
			if string(job.GameId) != values["game_id"] || job.Reason != values["reason"] {
				t.Fatalf("strings changed: %q -> %+v", s, job)
			}
		}
	})
}

// decodeFitting decodes the fields written as text s (fieldsFromText) and
// fails t unless the payload, decoded cleanly or not, is JSON that fits
// the generated type T.
func decodeFitting[T any](t *testing.T, c *codec, s string) (map[string]any, decoded, T) {
	t.Helper()
	values := fieldsFromText(s)
	d := c.decode(values)
	var job T
	if !json.Valid(d.payload) {
		t.Fatalf("invalid JSON %q from %q", d.payload, s)
	}
	if err := json.Unmarshal(d.payload, &job); err != nil {
		t.Fatalf("payload %q does not fit the generated type: %v", d.payload, err)
	}
	return values, d, job
}

// FuzzFieldsRoundTrip: a payload the codec writes is read back identically.
func FuzzFieldsRoundTrip(f *testing.F) {
	f.Add("g1", "stop", int64(5), "msg \"quoted\"\n\x01é")
	f.Add("", "", int64(-1), "")
	c := contractCodec(f, runtimejobs.JobResultsChannelPath)
	f.Fuzz(func(t *testing.T, game, code string, at int64, text string) {
		in := runtimejobs.RuntimeJobResultSchema{JobId: "1-0", GameId: game, Operation: "stop", Outcome: "failure",
			ErrorCode: code, ErrorMessage: text, CompletedAtMs: at}
		payload, err := json.Marshal(in)
		if err != nil {
			t.Skip()
		}
		fields, err := c.encode(payload, nil)
		if err != nil {
			t.Fatalf("encode %s: %v", payload, err)
		}
		values := map[string]any{}
		for i := 0; i < len(fields); i += 2 {
			values[fields[i]] = fields[i+1]
		}
		d := c.decode(values)
		if d.err != nil {
			// json.Marshal replaces invalid UTF-8, so every string is valid.
			t.Fatalf("decode of encoded %s: %v", payload, d.err)
		}
		var out runtimejobs.RuntimeJobResultSchema
		if err := json.Unmarshal(d.payload, &out); err != nil {
			t.Fatal(err)
		}
		var want runtimejobs.RuntimeJobResultSchema
		_ = json.Unmarshal(payload, &want)
		if out != want {
			t.Fatalf("round trip changed %+v into %+v", want, out)
		}
	})
}
