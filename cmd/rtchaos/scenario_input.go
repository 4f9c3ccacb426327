package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/redisstream"
)

// poison is one malformed job entry and what rtmanager must do with it:
// always a dead letter; a failure/invalid_job result too when the game id
// can be read (trimmed, non-empty, at most 128 bytes, valid UTF-8, within
// the 64 KiB field limit).
type poison struct {
	kind       string
	fields     []string
	wantResult bool
	wantGame   string
}

const poisonKinds = 15

// makePoison builds the i-th malformed entry; the kinds take turns. Of the
// oversized values, the first few of each kind are 1 MiB, the rest just
// over the 64 KiB field limit (same path, less disk).
func makePoison(i int, games []string) poison {
	g := games[i%len(games)]
	size := 64<<10 + 1
	if i/poisonKinds < 8 {
		size = 1 << 20
	}
	big := strings.Repeat("x", size)
	ok := []string{"game_id", g, "reason", "game_finished"}
	switch i % poisonKinds {
	case 0:
		return poison{kind: "missing game_id", fields: []string{"reason", "game_finished"}}
	case 1:
		return poison{kind: "missing reason", fields: []string{"game_id", g}, wantResult: true, wantGame: g}
	case 2:
		return poison{kind: "requested_at_ms not a number", fields: append(ok, "requested_at_ms", "yesterday"), wantResult: true, wantGame: g}
	case 3:
		return poison{kind: "requested_at_ms negative", fields: append(ok, "requested_at_ms", "-5"), wantResult: true, wantGame: g}
	case 4:
		return poison{kind: "oversized reason value", fields: []string{"game_id", g, "reason", big}, wantResult: true, wantGame: g}
	case 5:
		return poison{kind: "oversized game_id value", fields: []string{"game_id", "g" + big, "reason", "game_finished"}}
	case 6:
		return poison{kind: "game_id invalid UTF-8", fields: []string{"game_id", "g-\xff\xfe", "reason", "game_finished"}}
	case 7:
		return poison{kind: "reason invalid UTF-8", fields: []string{"game_id", g, "reason", "game_\xc3\x28finished"}, wantResult: true, wantGame: g}
	case 8:
		return poison{kind: "unknown reason", fields: []string{"game_id", g, "reason", "vacation"}, wantResult: true, wantGame: g}
	case 9:
		id := g + " extra"
		return poison{kind: "game_id with a space", fields: []string{"game_id", id, "reason", "game_finished"}, wantResult: true, wantGame: id}
	case 10:
		id := "{" + g + "}"
		return poison{kind: "game_id with braces", fields: []string{"game_id", id, "reason", "game_finished"}, wantResult: true, wantGame: id}
	case 11:
		id := g + "\nFLUSHALL"
		return poison{kind: "game_id with a newline", fields: []string{"game_id", id, "reason", "game_finished"}, wantResult: true, wantGame: id}
	case 12:
		f := append([]string(nil), ok...)
		for k := 0; k < 300; k++ {
			f = append(f, "extra_"+strconv.Itoa(k), "v")
		}
		return poison{kind: "300 extra fields", fields: f, wantResult: true, wantGame: g}
	case 13:
		return poison{kind: "blank game_id", fields: []string{"game_id", "   ", "reason", "game_finished"}}
	default:
		return poison{kind: "game_id of 200 bytes", fields: []string{"game_id", strings.Repeat("a", 200), "reason", "game_finished"}}
	}
}

type floodRun struct {
	rep      *checkReport
	span     time.Duration // first to last answer (result or dead letter)
	entries  int
	valid    int
	kinds    map[string][3]int // entries, dead-lettered, answered
	problems []string
}

// flood writes valid jobs (and, with poisonEvery > 0, one malformed entry
// after every poisonEvery-1 valid ones) to a fresh Redis, then starts
// rtmanager and measures how fast it works through them.
func flood(ctx context.Context, e *env, c *contract, o options, rng *rand.Rand, name string, valid, poisonEvery int) (*floodRun, error) {
	w, err := newWorld(ctx, o.games, nil, "", "")
	if err != nil {
		return nil, err
	}
	defer w.close()
	jobs := validJobs(valid, w.games, rng)
	var entries [][]string
	expect := []*poison{}
	np := 0
	for _, j := range jobs {
		if poisonEvery > 0 && len(entries)%poisonEvery == poisonEvery-1 {
			p := makePoison(np, w.games)
			np++
			entries = append(entries, p.fields)
			expect = append(expect, &p)
		}
		entries = append(entries, j)
		expect = append(expect, nil)
	}
	prod, err := produce(ctx, w.rdb, entries, 0, 50, 2*time.Minute, nil)
	if err != nil {
		return nil, err
	}
	byID := map[string]*poison{}
	for i, id := range prod.ids {
		if expect[i] != nil {
			byID[id] = expect[i]
		}
	}
	p, _, err := e.startReady(name, w.url, baseFlags(o)...)
	if err != nil {
		return nil, err
	}
	defer p.kill()
	if _, err := waitDrained(ctx, w.rdb, []string{jobsStream}, 2*time.Minute); err != nil {
		return nil, err
	}
	rep, err := c.check(ctx, w.rdb, plainKeys, func(m redis.XMessage) bool {
		pz := byID[m.ID]
		return pz == nil || pz.wantResult
	})
	if err != nil {
		return nil, err
	}
	run := &floodRun{rep: rep, entries: len(entries), valid: valid, kinds: map[string][3]int{}}
	problem := func(format string, a ...any) {
		if len(run.problems) < 8 {
			run.problems = append(run.problems, fmt.Sprintf(format, a...))
		}
	}
	for _, j := range rep.jobs {
		pz := byID[j.ID]
		res := rep.results[j.ID]
		dl, dead := rep.dead[j.ID]
		if pz == nil {
			if dead {
				problem("valid job %s dead-lettered: %s", j.ID, dl.Error)
			}
			if len(res) > 0 && res[0]["outcome"] != "success" {
				problem("valid job %s answered %s", j.ID, outcomeKey(res[0]))
			}
			continue
		}
		k := run.kinds[pz.kind]
		k[0]++
		if dead {
			k[1]++
			if r := dl.Reason; r != redisstream.DeadUndecodable && r != redisstream.DeadInvalid {
				problem("%s entry %s dead-lettered as %s", pz.kind, j.ID, r)
			}
		} else {
			problem("%s entry %s not dead-lettered", pz.kind, j.ID)
		}
		if len(res) > 0 {
			k[2]++
			r := res[0]
			if !pz.wantResult {
				problem("%s entry %s answered though its game id is unreadable: %q", pz.kind, j.ID, r["game_id"])
			} else if r["outcome"] != "failure" || r["error_code"] != "invalid_job" || r["game_id"] != pz.wantGame {
				problem("%s entry %s answered %s for game %q, want failure/invalid_job for %q", pz.kind, j.ID, outcomeKey(r), r["game_id"], pz.wantGame)
			}
		}
		run.kinds[pz.kind] = k
	}
	if rep.DeadLetters != len(byID) {
		problem("%d dead letters for %d malformed entries", rep.DeadLetters, len(byID))
	}
	// Span of the work, from the stream ids of the answers.
	ids, err := answerIDs(ctx, w.rdb)
	if err == nil && len(ids) > 1 {
		run.span = time.Duration(ids[1]-ids[0]) * time.Millisecond
	}
	return run, nil
}

// answerIDs is the first and last millisecond of the result and
// dead-letter streams together.
func answerIDs(ctx context.Context, rdb redis.UniversalClient) ([2]int64, error) {
	var out [2]int64
	for _, s := range []string{resultsStream, deadStream} {
		first, err := rdb.XRangeN(ctx, s, "-", "+", 1).Result()
		if err != nil {
			return out, err
		}
		last, err := rdb.XRevRangeN(ctx, s, "+", "-", 1).Result()
		if err != nil {
			return out, err
		}
		if len(first) == 0 {
			continue
		}
		a, b := msOfID(first[0].ID), msOfID(last[0].ID)
		if out[0] == 0 || a < out[0] {
			out[0] = a
		}
		out[1] = max(out[1], b)
	}
	return out, nil
}

// scenarioPoison: a clean run, then the same valid jobs with 10 % malformed
// entries interleaved; every malformed entry dead-lettered, every valid job
// answered normally, the drop in throughput reported.
func scenarioPoison(ctx context.Context, e *env, c *contract, o options, rng *rand.Rand, f *figures) {
	valid := o.jobs / 4
	// Two rounds of each, alternating, on a machine shared with others:
	// the faster round of each kind counts.
	var clean, dirty *floodRun
	for round := 1; round <= 2; round++ {
		c1, err := flood(ctx, e, c, o, rng, fmt.Sprintf("poison-clean-%d", round), valid, 0)
		if err != nil {
			f.fail("clean run: %v", err)
			return
		}
		d1, err := flood(ctx, e, c, o, rng, fmt.Sprintf("poison-flood-%d", round), valid, 10)
		if err != nil {
			f.fail("poisoned run: %v", err)
			return
		}
		f.add(fmt.Sprintf("round %d", round), fmt.Sprintf("clean %s, poisoned %s", round2(c1.span), round2(d1.span)))
		f.expect(c1.rep.ok() && c1.rep.DeadLetters == 0, "clean run: %s", strings.Join(c1.rep.Examples, "; "))
		f.expect(d1.rep.ok(), "poisoned run: %s", strings.Join(d1.rep.Examples, "; "))
		f.expect(len(d1.problems) == 0, "poisoned run: %s", strings.Join(d1.problems, "; "))
		if clean == nil || c1.span < clean.span {
			clean = c1
		}
		if dirty == nil || d1.span < dirty.span {
			dirty = d1
		}
	}
	rate := func(n int, d time.Duration) float64 {
		if d <= 0 {
			return 0
		}
		return float64(n) / d.Seconds()
	}
	cleanRate := rate(clean.valid, clean.span)
	dirtyRate := rate(dirty.valid, dirty.span)
	f.add("clean run", fmt.Sprintf("%d valid jobs in %s: %.0f jobs/s; %d results, %d dead letters", clean.valid, round(clean.span), cleanRate, clean.rep.Results, clean.rep.DeadLetters))
	f.add("poisoned run", fmt.Sprintf("%d entries (%d valid + %d malformed) in %s: %.0f valid jobs/s, %.0f entries/s",
		dirty.entries, dirty.valid, dirty.entries-dirty.valid, round(dirty.span), dirtyRate, rate(dirty.entries, dirty.span)))
	if cleanRate > 0 {
		f.add("throughput drop", fmt.Sprintf("%.1f %% (valid jobs/s against the clean run)", 100*(1-dirtyRate/cleanRate)))
	}
	r := dirty.rep
	f.add("jobs", r.Jobs)
	f.add("results", r.Results)
	f.add("duplicates", r.Duplicates)
	f.add("missing", r.Missing)
	f.add("dead letters", r.DeadLetters)
	f.add("contract violations", r.ContractFails+clean.rep.ContractFails)
	f.add("outcomes", r.outcomes())
	for k := 0; k < poisonKinds; k++ {
		pz := makePoison(k, []string{"g"})
		n := dirty.kinds[pz.kind]
		want := "no result"
		if pz.wantResult {
			want = "failure result"
		}
		f.add("  "+pz.kind, fmt.Sprintf("%d entries, %d dead-lettered, %d answered (want: dead letter + %s)", n[0], n[1], n[2], want))
	}
}

func round2(d time.Duration) string { return round(d).String() }

// ctl runs rtmanagerctl with args; it returns stdout, stderr and the exit code.
func (e *env) ctl(ctx context.Context, args ...string) (string, string, int) {
	cctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, e.rtmanagerctl(), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
	}
	return out.String(), errb.String(), code
}

// scenarioCredentials: Redis with an ACL user and password (default user
// off); rtmanager and rtmanagerctl authenticate from the URL; a wrong
// password is one clear line and exit 2; the password is never printed.
func scenarioCredentials(ctx context.Context, e *env, c *contract, o options, _ *rand.Rand, f *figures) {
	const user, pass, wrongPass = "rtm", "s3cret-pass", "wr0ng-pass"
	acl := []string{"--user", user, "on", ">" + pass, "~*", "&*", "+@all", "--user", "default", "off"}
	w, err := newWorld(ctx, 3, acl, user, pass)
	if err != nil {
		f.fail("start redis with ACL: %v", err)
		return
	}
	defer w.close()
	addr := w.srv.Addr()
	wrongURL := fmt.Sprintf("redis://%s:%s@%s/0", user, wrongPass, addr)
	var outputs []string // everything any process printed, to grep
	seen := func(s ...string) { outputs = append(outputs, s...) }

	p, _, err := e.startReady("cred-0", w.url, baseFlags(o)...)
	if err != nil {
		f.fail("%v", err)
		return
	}
	started := strings.Contains(p.stderr.Text(), "redis://"+user+":xxxxx@"+addr)
	f.add("rtmanager with user+password URL", fmt.Sprintf("ready; start line shows the URL redacted: %v", started))
	f.expect(started, "the start line does not show the redacted URL")

	type step struct {
		name string
		args []string
		want int
	}
	jobIDs := map[string]string{}
	steps := []step{
		{"register", []string{"register", "g-cred", "--runtime", "none", "--endpoint", "127.0.0.1:7100"}, 0},
		{"send-stop --wait", []string{"send-stop", "g-cred", "--reason", "game_finished", "--wait", "--json"}, 0},
		{"send-stop --raw --wait (bad job)", []string{"send-stop", "g-cred", "--raw", "--reason", "vacation", "--wait", "--json"}, 0},
		{"status", []string{"status", "g-cred", "--json"}, 0},
		{"results", []string{"results", "--json"}, 0},
		{"pending", []string{"pending"}, 0},
		{"dead list", []string{"dead", "list", "--json"}, 0},
	}
	var ctlRows []string
	for _, s := range steps {
		out, errOut, code := e.ctl(ctx, append([]string{"--redis-url", w.url}, s.args...)...)
		seen(out, errOut)
		ctlRows = append(ctlRows, fmt.Sprintf("%s=%d", s.name, code))
		f.expect(code == s.want, "rtmanagerctl %s: exit %d, want %d: %s", s.name, code, s.want, strings.TrimSpace(errOut))
		switch s.name {
		case "send-stop --wait", "send-stop --raw --wait (bad job)":
			var v struct {
				JobID  string         `json:"job_id"`
				Result map[string]any `json:"result"`
			}
			if err := json.Unmarshal([]byte(out), &v); err != nil {
				f.fail("rtmanagerctl %s: output is not JSON: %q", s.name, out)
				continue
			}
			jobIDs[s.name] = v.JobID
			want := "success"
			if strings.Contains(s.name, "bad") {
				want = "failure/invalid_job"
			}
			got := outcomeKey(map[string]string{"outcome": fmt.Sprint(v.Result["outcome"]), "error_code": fmt.Sprint(v.Result["error_code"])})
			f.expect(got == want, "rtmanagerctl %s: result %s, want %s", s.name, got, want)
		case "status":
			f.expect(strings.Contains(out, `"status": "stopped"`) || strings.Contains(out, `"status":"stopped"`), "rtmanagerctl status: game not stopped: %s", out)
		}
	}
	f.add("rtmanagerctl exit codes", strings.Join(ctlRows, " "))

	// Wrong credentials: rtmanager and rtmanagerctl, one clear line, exit 2.
	type bad struct {
		name string
		run  func() (string, string, int)
	}
	bads := []bad{
		{"rtmanager, wrong password", func() (string, string, int) { return e.runOnce(ctx, "cred-wrong", wrongURL) }},
		{"rtmanager, no credentials", func() (string, string, int) { return e.runOnce(ctx, "cred-none", "redis://"+addr+"/0") }},
		{"rtmanagerctl status, wrong password", func() (string, string, int) { return e.ctl(ctx, "--redis-url", wrongURL, "status", "g-cred") }},
		{"rtmanagerctl send-stop, wrong password", func() (string, string, int) {
			return e.ctl(ctx, "--redis-url", wrongURL, "send-stop", "g-cred", "--reason", "game_finished")
		}},
	}
	for _, b := range bads {
		out, errOut, code := b.run()
		seen(out, errOut)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		f.add(b.name, fmt.Sprintf("exit %d: %s", code, strings.TrimSpace(errOut)))
		f.expect(code == 2, "%s: exit %d, want 2", b.name, code)
		f.expect(len(lines) == 1 && strings.TrimSpace(errOut) != "", "%s: want one line on stderr, got %q", b.name, errOut)
		low := strings.ToLower(errOut)
		f.expect(strings.Contains(low, "wrongpass") || strings.Contains(low, "noauth") || strings.Contains(low, "credential") || strings.Contains(low, "auth"),
			"%s: the error does not say the credentials were refused: %q", b.name, errOut)
	}

	m, err := p.metrics()
	if err != nil {
		f.fail("scrape /metrics: %v", err)
	}
	seen(m)
	if err := p.term(15 * time.Second); err != nil {
		f.fail("rtmanager did not exit 0 after SIGTERM: %v", err)
	}
	seen(p.stderr.Text(), p.stdout.Text())
	all := strings.Join(outputs, "\n")
	f.add("output searched", fmt.Sprintf("%d bytes (rtmanager logs, rtmanagerctl stdout/stderr, /metrics)", len(all)))
	f.add("password occurrences", strings.Count(all, pass))
	f.add("wrong password occurrences", strings.Count(all, wrongPass))
	f.expect(!strings.Contains(all, pass), "the password appears in the output")
	f.expect(!strings.Contains(all, wrongPass), "the wrong password appears in the output")

	rep, err := c.check(ctx, w.rdb, plainKeys, nil)
	if err != nil {
		f.fail("checker: %v", err)
		return
	}
	f.add("jobs", rep.Jobs)
	f.add("results", rep.Results)
	f.add("duplicates", rep.Duplicates)
	f.add("missing", rep.Missing)
	f.add("dead letters", rep.DeadLetters)
	f.expect(rep.ok(), "stream check failed: %s", strings.Join(rep.Examples, "; "))
}

// runOnce runs rtmanager expecting it to exit by itself (bad start-up).
func (e *env) runOnce(ctx context.Context, name, url string) (string, string, int) {
	p, err := e.start(name, url, "--http-addr", "")
	if err != nil {
		return "", err.Error(), -1
	}
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.kill()
		return p.stdout.Text(), p.stderr.Text(), -1
	case <-ctx.Done():
		p.kill()
		return "", "", -1
	}
	code := 0
	if ee, ok := p.exitErr.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if p.exitErr != nil {
		code = -1
	}
	return p.stdout.Text(), p.stderr.Text(), code
}
