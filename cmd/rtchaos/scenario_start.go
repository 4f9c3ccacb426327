package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/runtimes/process"
)

// chaosEngine is a real engine for the start scenario: it accepts TCP
// connections on $PORT after a short start-up, so kills land mid-start.
var chaosEngine = `import socket,os,time
time.sleep(0.3)
s=socket.socket()
s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)
s.bind(('127.0.0.1',int(os.environ['PORT'])))
s.listen(16)
while True: time.sleep(1)`

// scenarioStarts: start jobs for N games with the process runtime while
// rtmanager is SIGKILLed three times, then stop jobs for the same games.
// Exactly one result per job, exactly one live engine per game after the
// starts (found by its RTMANAGER_GAME_ID label, and the one its record
// names), none after the stops.
func scenarioStarts(ctx context.Context, e *env, c *contract, o options, rng *rand.Rand, f *figures) {
	const kills = 3
	n := min(o.games, 12)
	w, err := newWorld(ctx, 0, nil, "", "")
	if err != nil {
		f.fail("start redis: %v", err)
		return
	}
	defer w.close()
	profiles := filepath.Join(e.work, "engines.yaml")
	yaml := fmt.Sprintf("engines:\n  chaos:\n    runtime: process\n    command: [python3, -c, %q]\n", chaosEngine)
	if err := os.WriteFile(profiles, []byte(yaml), 0o600); err != nil {
		f.fail("%v", err)
		return
	}
	drv := process.New(process.Options{})
	games := make([]string, n)
	for i := range games {
		games[i] = fmt.Sprintf("s-%03d-%d", i, rng.IntN(1e6))
	}
	defer func() {
		for _, g := range games {
			found, _ := drv.Find(g, "")
			for _, p := range found {
				_ = drv.Stop(context.Background(), p.ContainerID, time.Second)
			}
		}
	}()
	flags := append(baseFlags(o), "--runtime", "process", "--engines", profiles, "--start-timeout", "30s", "--stop-grace", "2s")
	p, _, err := e.startReady("starts-0", w.url, flags...)
	if err != nil {
		f.fail("%v", err)
		return
	}
	var startIDs []string
	for _, g := range games {
		id, err := w.rdb.XAdd(ctx, &redis.XAddArgs{Stream: runtimejobs.StartJobsChannelPath, Values: []string{"game_id", g, "engine", "chaos"}}).Result()
		if err != nil {
			f.fail("xadd start job: %v", err)
			return
		}
		startIDs = append(startIDs, id)
	}
	for i := 1; i <= kills; i++ {
		time.Sleep(200*time.Millisecond + time.Duration(rng.Int64N(int64(800*time.Millisecond))))
		p.kill()
		np, _, err := e.startReady(fmt.Sprintf("starts-%d", i), w.url, flags...)
		if err != nil {
			f.fail("restart %d: %v", i, err)
			return
		}
		p = np
	}
	f.add("SIGKILLs during starts", kills)
	killedAt := w.resultsLen(ctx)
	got, err := waitAnswers(ctx, w.rdb, startIDs, 2*time.Minute)
	if err != nil {
		f.fail("%v", err)
	}
	checkAnswers(f, "start", startIDs, got, "success")
	for i, g := range games {
		found, err := drv.Find(g, "")
		if err != nil {
			f.fail("find engines of %s: %v", g, err)
			continue
		}
		rec, _ := w.rdb.HGet(ctx, "rtmanager:runtime:{"+g+"}", "container_id").Result()
		f.expect(len(found) == 1, "game %s has %d live engines after its start, want 1", g, len(found))
		if len(found) == 1 {
			f.expect(found[0].ContainerID == rec, "game %s: live engine %s is not the recorded %s", g, found[0].ContainerID, rec)
			f.expect(got[startIDs[i]]["container_id"] == rec, "game %s: answered container %s, recorded %s", g, got[startIDs[i]]["container_id"], rec)
		}
	}

	var stopIDs []string
	for _, g := range games {
		id, err := w.rdb.XAdd(ctx, &redis.XAddArgs{Stream: runtimejobs.StopJobsChannelPath, Values: []string{"game_id", g, "reason", "game_finished"}}).Result()
		if err != nil {
			f.fail("xadd stop job: %v", err)
			return
		}
		stopIDs = append(stopIDs, id)
	}
	got, err = waitAnswers(ctx, w.rdb, stopIDs, 2*time.Minute)
	if err != nil {
		f.fail("%v", err)
	}
	checkAnswers(f, "stop", stopIDs, got, "success")
	left := 0
	for _, g := range games {
		found, _ := drv.Find(g, "")
		left += len(found)
	}
	adopted := 0
	e.mu.Lock()
	for _, q := range e.procs {
		if strings.HasPrefix(q.name, "starts-") {
			adopted += strings.Count(q.stderr.Text(), "adopted the runtime of an earlier attempt")
		}
	}
	e.mu.Unlock()
	f.add("games", n)
	f.add("start results before the last restart", killedAt)
	f.add("engines adopted after a kill", adopted)
	f.add("live engines after the stops", left)
	f.expect(left == 0, "%d engines still run after their games' stops", left)
	if err := p.term(15 * time.Second); err != nil {
		f.fail("last rtmanager did not exit 0 after SIGTERM: %v", err)
	}
}

// waitAnswers reads the results of ids, each result kept with its count in
// field "_count".
func waitAnswers(ctx context.Context, rdb redis.UniversalClient, ids []string, timeout time.Duration) (map[string]map[string]string, error) {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	deadline := time.Now().Add(timeout)
	for {
		msgs, err := readAll(ctx, rdb, resultsStream, 1000)
		if err != nil {
			return nil, err
		}
		got := map[string]map[string]string{}
		for _, m := range msgs {
			vals := strValues(m.Values)
			id := vals["job_id"]
			if !want[id] {
				continue
			}
			if prev, ok := got[id]; ok {
				prev["_count"] += "+"
				continue
			}
			vals["_count"] = "+"
			got[id] = vals
		}
		if len(got) == len(ids) {
			// Give a duplicate a moment to show up.
			time.Sleep(500 * time.Millisecond)
			return got, nil
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("%d of %d jobs answered within %s", len(got), len(ids), timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func checkAnswers(f *figures, op string, ids []string, got map[string]map[string]string, outcome string) {
	dup, wrong := 0, []string{}
	for _, id := range ids {
		r, ok := got[id]
		if !ok {
			continue
		}
		if r["_count"] != "+" {
			dup++
		}
		if r["outcome"] != outcome || r["operation"] != op {
			wrong = append(wrong, fmt.Sprintf("%s: %s %s %s %s", id, r["operation"], r["outcome"], r["error_code"], r["error_message"]))
		}
	}
	f.add(op+" jobs answered", fmt.Sprintf("%d/%d", len(got), len(ids)))
	f.expect(len(got) == len(ids), "%d %s jobs without a result", len(ids)-len(got), op)
	f.expect(dup == 0, "%d %s jobs answered more than once", dup, op)
	f.expect(len(wrong) == 0, "%s jobs answered wrongly: %s", op, strings.Join(wrong, "; "))
}
