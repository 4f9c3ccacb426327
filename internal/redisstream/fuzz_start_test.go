package redisstream

import (
	"strconv"
	"strings"
	"testing"

	"galaxy/rtmanager/gen/runtimejobs"
)

// FuzzDecodeStartJob is FuzzDecodeStopJob's twin for runtime:start_jobs:
// whatever the fields, decoding never panics and always yields JSON that
// fits the generated type; a clean decode has both required fields,
// verbatim, the time as the field's integer, and the partition key as the
// trimmed game id (the key that picks the game's worker).
func FuzzDecodeStartJob(f *testing.F) {
	f.Add("game_id=g1\nengine=demo")
	f.Add("game_id= g1 \nengine=demo\nrequested_at_ms= 17 ")
	f.Add("game_id=g1\nengine=\nrequested_at_ms=")
	f.Add("game_id=g\xff\nengine=x\nrequested_at_ms=1e3")
	f.Add("game_id=g1\nengine=demo\nrequested_at_ms=99999999999999999999")
	fixtureSeeds(f, "runtime-start-job.json")
	c := contractCodec(f, runtimejobs.StartJobsChannelPath)
	f.Fuzz(func(t *testing.T, s string) {
		values, d, job := decodeFitting[runtimejobs.RuntimeStartJobSchema](t, c, s)
		if d.err != nil {
			return
		}
		game, hasGame := values["game_id"].(string)
		engine, hasEngine := values["engine"].(string)
		if !hasGame || !hasEngine {
			t.Fatalf("clean decode without required fields: %q", s)
		}
		if string(job.GameId) != game || string(job.Engine) != engine {
			t.Fatalf("strings changed: %q -> %+v", s, job)
		}
		if d.key != strings.TrimSpace(game) {
			t.Fatalf("partition key %q for game id %q", d.key, game)
		}
		at, _ := values["requested_at_ms"].(string)
		switch {
		case at == "" && job.RequestedAtMs != nil:
			t.Fatalf("absent time decoded as %d: %q", *job.RequestedAtMs, s)
		case at != "":
			want, err := strconv.ParseInt(strings.TrimSpace(at), 10, 64)
			if err != nil || job.RequestedAtMs == nil || *job.RequestedAtMs != want {
				t.Fatalf("time %q decoded as %v (parse error %v)", at, job.RequestedAtMs, err)
			}
		}
	})
}
