package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func baseFlags(o options) []string {
	return []string{"--workers", itoa(o.workers), "--claim-idle", o.claimIdle.String(), "--shutdown-timeout", "10s"}
}

// claimBound is how soon a dead consumer's entries must be claimed: they
// may have been touched just before the kill (every claim-idle/3), become
// claimable claim-idle later, and are looked for every claim-idle/3; plus
// one second of margin for a loaded 2-core machine.
func claimBound(o options) time.Duration { return o.claimIdle + o.claimIdle/3 + time.Second }

// finish checks the streams and the games at the end of a fault scenario
// and reports the common figures.
func finish(ctx context.Context, c *contract, w *world, f *figures, prod prodStats) *checkReport {
	drainedIn, err := waitDrained(ctx, w.rdb, []string{jobsStream}, 2*time.Minute)
	if err != nil {
		f.fail("%v", err)
	}
	f.add("drained after producer", round(drainedIn))
	rep, err := c.check(ctx, w.rdb, plainKeys, nil)
	if err != nil {
		f.fail("checker: %v", err)
		return nil
	}
	acked := 0
	onStream := map[string]bool{}
	for _, j := range rep.jobs {
		onStream[j.ID] = true
	}
	lost := 0
	for _, id := range prod.ids {
		if id != "" {
			acked++
			if !onStream[id] {
				lost++
			}
		}
	}
	f.add("jobs (XADD acknowledged)", acked)
	f.add("jobs on the stream", rep.Jobs)
	f.add("results", rep.Results)
	f.add("jobs answered", rep.Answered)
	f.add("duplicates", rep.Duplicates)
	f.add("missing", rep.Missing)
	f.add("results for unknown jobs", rep.Unknown)
	f.add("dead letters", rep.DeadLetters)
	f.add("contract violations", rep.ContractFails)
	f.add("outcomes", rep.outcomes())
	f.expect(lost == 0, "%d acknowledged XADDs are not on the job stream", lost)
	f.expect(rep.ok(), "stream check failed: %s", strings.Join(rep.Examples, "; "))
	stopped, not, err := gamesStopped(ctx, w.rdb, w.games, w.store.RecordKey)
	if err != nil {
		f.fail("read game records: %v", err)
	}
	f.add("games stopped", fmt.Sprintf("%d/%d", stopped, len(w.games)))
	f.expect(stopped == len(w.games), "games not stopped: %s", strings.Join(not, ", "))
	return rep
}

// scenarioKill: rtmanager SIGKILLed at random moments five times while
// 20,000 jobs flow, restarted each time as a new consumer.
func scenarioKill(ctx context.Context, e *env, c *contract, o options, rng *rand.Rand, f *figures) {
	const kills = 5
	w, err := newWorld(ctx, o.games, nil, "", "")
	if err != nil {
		f.fail("start redis: %v", err)
		return
	}
	defer w.close()
	flags := baseFlags(o)
	p, _, err := e.startReady("kill-0", w.url, flags...)
	if err != nil {
		f.fail("%v", err)
		return
	}
	entries := validJobs(o.jobs, w.games, rng)
	// Faster than one rtmanager on two cores goes: a backlog builds, so
	// each kill leaves a full prefetch of entries pending.
	rate := 5000
	prodCh := make(chan prodStats, 1)
	prodErr := make(chan error, 1)
	go func() {
		st, err := produce(ctx, w.rdb, entries, rate, 100, 2*time.Minute, nil)
		prodCh <- st
		prodErr <- err
	}()
	type recovery struct {
		took time.Duration
		err  error
	}
	recs := make(chan recovery, kills)
	var atKill []string
	var readies []time.Duration
	for i := 1; i <= kills; i++ {
		time.Sleep(300*time.Millisecond + time.Duration(rng.Int64N(int64(1200*time.Millisecond))))
		dead := p.name
		p.kill()
		killedAt := time.Now()
		gs, _ := readGroup(ctx, w.rdb, jobsStream)
		atKill = append(atKill, fmt.Sprintf("%d results/%d pending", w.resultsLen(ctx), gs.PerConsumer[dead]))
		np, ready, err := e.startReady(fmt.Sprintf("kill-%d", i), w.url, flags...)
		if err != nil {
			f.fail("restart %d: %v", i, err)
			return
		}
		readies = append(readies, ready)
		p = np
		go func() {
			took, err := waitConsumerEmpty(ctx, w.rdb, []string{jobsStream}, dead, killedAt, time.Minute)
			recs <- recovery{took, err}
		}()
	}
	prod := <-prodCh
	if err := <-prodErr; err != nil {
		f.fail("%v", err)
	}
	var recovered []time.Duration
	for i := 0; i < kills; i++ {
		r := <-recs
		if r.err != nil {
			f.fail("%v", r.err)
			continue
		}
		recovered = append(recovered, r.took)
	}
	f.add("SIGKILLs", fmt.Sprintf("%d (results so far / entries pending with the killed consumer: %s)", kills, strings.Join(atKill, ", ")))
	f.add("restart to ready", durations(readies))
	f.add("kill to orphans claimed", fmt.Sprintf("%s (max %s, bound %s)", durations(recovered), round(maxDuration(recovered)), claimBound(o)))
	f.add("producer", fmt.Sprintf("%d jobs in %s", len(entries), round(prod.took)))
	rep := finish(ctx, c, w, f, prod)
	f.expect(maxDuration(recovered) <= claimBound(o), "a killed consumer's entries were claimed after %s, bound %s: the restarted process claims only into free prefetch, which its own backlog keeps full",
		round(maxDuration(recovered)), claimBound(o))
	if rep != nil {
		// Every job names a running game: the right answer is success (the
		// first stop) or success/replay_no_op, whatever the crashes.
		wrong := rep.Results - rep.Outcomes["success"] - rep.Outcomes["success/replay_no_op"]
		f.expect(wrong == 0, "%d jobs of running games answered with a failure (%s): their game's stop was owned by a killed consumer's unclaimed entry, so they were retried as busy until deliveries ran out",
			wrong, rep.outcomes())
	}
	if err := p.term(15 * time.Second); err != nil {
		f.fail("last rtmanager did not exit 0 after SIGTERM: %v", err)
	}
}

// scenarioRedis: redis-server SIGKILLed and restarted twice while jobs flow.
func scenarioRedis(ctx context.Context, e *env, c *contract, o options, rng *rand.Rand, f *figures) {
	const outages = 2
	const outage = 3 * time.Second
	w, err := newWorld(ctx, o.games, nil, "", "")
	if err != nil {
		f.fail("start redis: %v", err)
		return
	}
	defer w.close()
	p, _, err := e.startReady("redis-0", w.url, baseFlags(o)...)
	if err != nil {
		f.fail("%v", err)
		return
	}
	// Jobs flow at 300/s until both outages are over (at most o.jobs/2),
	// and a burst of 1,000 comes just before each kill, so Redis always
	// goes away with jobs in flight.
	entries := validJobs(o.jobs/2, w.games, rng)
	var burstIDs []string
	prodCh := make(chan prodStats, 1)
	prodErr := make(chan error, 1)
	stopProd := make(chan struct{})
	go func() {
		st, err := produce(ctx, w.rdb, entries, 300, 15, 2*time.Minute, stopProd)
		prodCh <- st
		prodErr <- err
	}()
	// prefetch + workers handler lines at most when Redis goes (each held
	// job fails once), plus the broker's rate-limited warnings.
	prefetch := 2*128 + o.workers
	lineBound := int64(prefetch + o.workers + 40)
	// Once Redis is back and /readyz says 200, the backlog must be worked
	// off without long pauses: a read resumes at once, a retry waits at most
	// --retry-backoff doubled a few times.
	const stallBound = 3 * time.Second
	// Once Redis is back, no job may wait for its answer longer than the
	// backlog present at the restart takes to drain, plus this (counted from
	// when it was written, or from the restart if later; it covers Redis
	// reloading its data, rtmanager's probe interval and the first read): a
	// job left behind by the outage would wait longer.
	const waitSlack = 3 * time.Second
	var longestCatchUp time.Duration
	var backTimes []int64 // Unix ms of each restart of Redis
	for i := 1; i <= outages; i++ {
		time.Sleep(time.Second + time.Duration(rng.Int64N(int64(time.Second))))
		burst, err := produce(ctx, w.rdb, validJobs(1000, w.games, rng), 0, 100, time.Minute, nil)
		if err != nil {
			f.fail("burst: %v", err)
			return
		}
		burstIDs = append(burstIDs, burst.ids...)
		time.Sleep(50 * time.Millisecond)
		before := w.resultsLen(ctx)
		lines0 := p.stderr.Lines()
		if err := w.srv.Kill(); err != nil {
			f.fail("kill redis: %v", err)
			return
		}
		killedAt := time.Now()
		notReady := time.Duration(-1)
		readyDuring := 0
		var linesLast int64 // lines at the start of the outage's last second
		for time.Since(killedAt) < outage {
			code := p.readyz()
			if code == http.StatusServiceUnavailable && notReady < 0 {
				notReady = time.Since(killedAt)
			}
			if code == http.StatusOK && notReady >= 0 {
				readyDuring++
			}
			if linesLast == 0 && time.Since(killedAt) >= outage-time.Second {
				linesLast = p.stderr.Lines()
			}
			time.Sleep(50 * time.Millisecond)
		}
		lines1 := p.stderr.Lines()
		alive := p.alive()
		if err := w.srv.Restart(); err != nil {
			f.fail("restart redis: %v", err)
			return
		}
		restartedAt := time.Now()
		backTimes = append(backTimes, restartedAt.UnixMilli())
		readyAfter := time.Duration(-1)
		if err := p.waitStatus(http.StatusOK, 30*time.Second); err != nil {
			f.fail("outage %d: %v", i, err)
		} else {
			readyAfter = time.Since(restartedAt)
		}
		resumed := time.Duration(-1)
		if err := waitResults(ctx, w, w.resultsLen(ctx)+1, 30*time.Second); err == nil {
			resumed = time.Since(restartedAt)
		}
		// Caught up: every job on the stream when Redis came back is
		// answered; meanwhile, results must not stop for long.
		took, stall, err := catchUp(ctx, w, time.Minute)
		if err != nil {
			f.fail("outage %d: %v", i, err)
		}
		longestCatchUp = max(longestCatchUp, took)
		f.add(fmt.Sprintf("outage %d", i), fmt.Sprintf("%s of Redis gone at %d results, 50ms after a burst of 1000 jobs; /readyz 503 after %s, 200 again %s after restart; first result %s after restart",
			outage, before, fmtDur(notReady), fmtDur(readyAfter), fmtDur(resumed)))
		f.add(fmt.Sprintf("outage %d recovery", i), fmt.Sprintf("backlog at the restart answered %s after /readyz said 200; longest stretch without a new result meanwhile %s (bound %s)",
			fmtDur(took), round(stall), stallBound))
		f.add(fmt.Sprintf("outage %d log lines", i), fmt.Sprintf("%d while Redis was away, %d in its last second (bound %d)", lines1-lines0, lines1-linesLast, lineBound))
		f.expect(alive && p.alive(), "outage %d: rtmanager exited: %v; stderr: %s", i, p.exitErr, tail(p.stderr.Text(), 600))
		f.expect(notReady >= 0, "outage %d: /readyz never reported 503 while Redis was away", i)
		f.expect(readyDuring == 0, "outage %d: /readyz said 200 %d times while Redis was away", i, readyDuring)
		f.expect(readyAfter >= 0, "outage %d: /readyz not 200 after the restart", i)
		f.expect(lines1-lines0 <= lineBound, "outage %d: %d log lines while Redis was away, bound %d", i, lines1-lines0, lineBound)
		f.expect(stall <= stallBound, "outage %d: with Redis back and ready, no job was answered for %s while %s waited (bound %s)",
			i, round(stall), "the backlog", stallBound)
	}
	time.Sleep(time.Second)
	close(stopProd)
	prod := <-prodCh
	if err := <-prodErr; err != nil {
		f.fail("%v", err)
	}
	f.add("producer", fmt.Sprintf("%d jobs at 300/s in %s + %d in bursts, %d XADDs repeated", written(prod.ids), round(prod.took), len(burstIDs), prod.retries))
	prod.ids = append(prod.ids, burstIDs...)
	rep := finish(ctx, c, w, f, prod)
	if rep != nil {
		worst, worstID := longestWait(rep, backTimes)
		waitBound := longestCatchUp + waitSlack
		f.add("longest wait after Redis was back", fmt.Sprintf("%s (job %s; bound: longest backlog catch-up %s + %s)", worst, worstID, round(longestCatchUp), waitSlack))
		f.expect(worst <= waitBound, "job %s waited %s for its answer after Redis was back (bound %s): a job was left behind by the outage", worstID, worst, waitBound)
	}
	f.expect(p.alive(), "rtmanager exited: %v", p.exitErr)
	if err := p.term(15 * time.Second); err != nil {
		f.fail("rtmanager did not exit 0 after SIGTERM: %v", err)
	}
}

// scenarioReplicas: three rtmanager processes in one group; one SIGKILLed
// mid-run; its pending entries must be claimed by the others in time.
func scenarioReplicas(ctx context.Context, e *env, c *contract, o options, rng *rand.Rand, f *figures) {
	w, err := newWorld(ctx, o.games, nil, "", "")
	if err != nil {
		f.fail("start redis: %v", err)
		return
	}
	defer w.close()
	names := []string{"replica-1", "replica-2", "replica-3"}
	procs := map[string]*rtm{}
	for _, n := range names {
		p, _, err := e.startReady(n, w.url, baseFlags(o)...)
		if err != nil {
			f.fail("%v", err)
			return
		}
		procs[n] = p
	}
	entries := validJobs(o.jobs*3/4, w.games, rng)
	prodCh := make(chan prodStats, 1)
	prodErr := make(chan error, 1)
	go func() {
		// Faster than three replicas on two cores can go: a backlog builds,
		// so each replica holds a full prefetch when one is killed.
		st, err := produce(ctx, w.rdb, entries, 6000, 100, 2*time.Minute, nil)
		prodCh <- st
		prodErr <- err
	}()
	victim := procs["replica-2"]
	if err := waitResults(ctx, w, int64(len(entries)/3), time.Minute); err != nil {
		f.fail("%v", err)
	}
	victimMetrics, _ := victim.metrics()
	gs, _ := readGroup(ctx, w.rdb, jobsStream)
	orphans := gs.PerConsumer[victim.name]
	atKill := w.resultsLen(ctx)
	victim.kill()
	killedAt := time.Now()
	took, err := waitConsumerEmpty(ctx, w.rdb, []string{jobsStream}, victim.name, killedAt, time.Minute)
	bound := claimBound(o)
	if err != nil {
		f.fail("%v", err)
	}
	f.add("SIGKILL of replica-2", fmt.Sprintf("at %d results, %d entries pending with it", atKill, orphans))
	f.add("kill to orphans claimed", fmt.Sprintf("%s (bound: claim-idle %s + claim interval %s + 1s = %s)", round(took), o.claimIdle, o.claimIdle/3, bound))
	f.expect(err == nil && took <= bound, "replica-2's entries claimed after %s, bound %s", round(took), bound)
	prod := <-prodCh
	if err := <-prodErr; err != nil {
		f.fail("%v", err)
	}
	f.add("producer", fmt.Sprintf("%d jobs in %s", len(entries), round(prod.took)))
	finish(ctx, c, w, f, prod)

	var spread []string
	for _, n := range names {
		p := procs[n]
		acks := "-"
		m := victimMetrics
		if p != victim {
			m, _ = p.metrics()
		}
		if m != "" {
			acks = fmt.Sprint(metricValue(m, "rtmanager_acks_total", "stream", jobsStream))
		}
		claimed := claimedCount(p.stderr.Text())
		note := ""
		if p == victim {
			note = " (acks scraped just before the kill)"
		}
		spread = append(spread, fmt.Sprintf("%s: %d jobs logged, acks %s%s, claimed %d", n, processedLines(p), acks, note, claimed))
		f.expect(processedLines(p) > 0, "%s handled no job: the load was not shared", n)
	}
	f.add("spread", strings.Join(spread, "; "))
	for _, n := range names {
		if p := procs[n]; p != victim {
			if err := p.term(15 * time.Second); err != nil {
				f.fail("%s did not exit 0 after SIGTERM: %v", n, err)
			}
		}
	}
}

// longestWait is the longest time a job waited for its result counted from
// when it was written or, if later, from the last time rtmanager became
// ready again before the result.
// longestWait is the longest a job waited for its answer, counted from when
// it was written or from the last restart of Redis before its answer,
// whichever is later.
func longestWait(rep *checkReport, backTimes []int64) (time.Duration, string) {
	var worst int64
	worstID := "-"
	for id, rs := range rep.results {
		done, err := strconv.ParseInt(rs[0]["completed_at_ms"], 10, 64)
		if err != nil {
			continue
		}
		from := msOfID(id)
		for _, r := range backTimes {
			if r <= done {
				from = max(from, r)
			}
		}
		if done-from > worst {
			worst, worstID = done-from, id
		}
	}
	return time.Duration(worst) * time.Millisecond, worstID
}

func written(ids []string) int {
	n := 0
	for _, id := range ids {
		if id != "" {
			n++
		}
	}
	return n
}

// fmtDur prints a measured duration, "none" when it was not measured.
func fmtDur(d time.Duration) string {
	if d < 0 {
		return "none"
	}
	return round(d).String()
}

// claimedCount sums the counts of the "claimed idle entries" log lines.
func claimedCount(log string) int {
	n := 0
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `"msg":"claimed idle entries"`) {
			continue
		}
		var v struct {
			Count int `json:"count"`
		}
		if json.Unmarshal([]byte(line), &v) == nil {
			n += v.Count
		}
	}
	return n
}
