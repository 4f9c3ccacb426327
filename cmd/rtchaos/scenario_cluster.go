package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

const (
	clusterMasters = 3
	clusterShards  = 16
	// clusterRate is the producer's jobs per second: about what two
	// rtmanager replicas keep up with on a loaded 2-core machine beside six
	// redis-servers, so every shard keeps getting jobs through the faults.
	clusterRate = 1000
	// clusterStallBound bounds the time from the kill of a master until its
	// shards answer jobs again (issue 15).
	clusterStallBound = 10 * time.Second
	// clusterConfirmFor is how long the producer waits for a replica to
	// confirm a write before it writes it again: past a failover and the
	// old master's return as a replica.
	clusterConfirmFor = 20 * time.Second
)

// scenarioCluster: a Redis Cluster of 3 masters + 3 replicas, 16 shards,
// two rtmanager replicas; while jobs flow, one replica is SIGKILLed (and
// restarted under a new consumer name), then the master of one shard is
// SIGKILLed so its replica takes over.
func scenarioCluster(ctx context.Context, e *env, c *contract, o options, rng *rand.Rand, f *figures) {
	w, err := newClusterWorld(ctx, c, clusterMasters, clusterShards, o.games)
	if err != nil {
		f.fail("start the cluster: %v", err)
		return
	}
	defer w.close()
	url := w.cl.URL()
	flags := append(baseFlags(o), "--shards", itoa(clusterShards))
	procs := map[string]*rtm{}
	for _, n := range []string{"cluster-1", "cluster-2"} {
		p, _, err := e.startReady(n, url, flags...)
		if err != nil {
			f.fail("%v", err)
			return
		}
		procs[n] = p
	}
	f.add("cluster", fmt.Sprintf("%d masters + %d replicas, cluster-node-timeout 1s, appendonly (fsync always); %d shards; 2 rtmanager replicas",
		clusterMasters, clusterMasters, clusterShards))

	entries := validJobs(o.jobs/2, w.games, rng)
	keys := make([]string, len(entries))
	for i, en := range entries {
		keys[i] = w.jobKey(en[1])
	}
	stopProd := make(chan struct{})
	prodCh := make(chan waitedProd, 1)
	prodErr := make(chan error, 1)
	go func() {
		st, err := produceWaited(ctx, w.rdb, keys, entries, clusterRate, 50, clusterConfirmFor, 2*time.Minute, stopProd)
		prodCh <- st
		prodErr <- err
	}()
	stopped := false
	stopProducer := func() {
		if !stopped {
			close(stopProd)
			stopped = true
		}
	}
	defer stopProducer()

	// Fault 1: kill -9 of an rtmanager replica.
	time.Sleep(2*time.Second + time.Duration(rng.Int64N(int64(time.Second))))
	victim := procs["cluster-2"]
	orphans, _ := consumerPending(ctx, w.rdb, w.jobKeys(), victim.name)
	atKill := w.resultsLen(ctx)
	victim.kill()
	killedAt := time.Now()
	np, ready, err := e.startReady("cluster-2b", url, flags...)
	if err != nil {
		f.fail("restart: %v", err)
		return
	}
	procs["cluster-2b"] = np
	claimed, err := waitConsumerEmpty(ctx, w.rdb, w.jobKeys(), victim.name, killedAt, time.Minute)
	if err != nil {
		f.fail("%v", err)
	}
	f.add("SIGKILL of rtmanager cluster-2", fmt.Sprintf("at %d results, %d entries pending with it over %d shards; restarted as consumer cluster-2b, ready in %s",
		atKill, orphans, clusterShards, round(ready)))
	f.add("kill to orphans claimed", fmt.Sprintf("%s (bound %s)", fmtDur(claimed), claimBound(o)))
	f.expect(err == nil && claimed <= claimBound(o), "cluster-2's entries claimed after %s, bound %s", fmtDur(claimed), claimBound(o))

	// Fault 2: kill -9 of the master of one shard; its replica takes over.
	time.Sleep(time.Second + time.Duration(rng.Int64N(int64(time.Second))))
	shard := rng.IntN(clusterShards)
	fo, err := failover(ctx, w, shard, []*rtm{procs["cluster-1"], np})
	if err != nil {
		f.fail("failover: %v", err)
		return
	}
	f.add("SIGKILL of a master", fmt.Sprintf("master %s of shard %d (shards %s) at %d results; replica %s promoted after %s; the old master restarted then, back as its replica %s after the kill",
		fo.old, shard, ints(fo.shards), fo.atKill, fo.promoted, round(fo.promotedIn), round(fo.rejoinedIn)))
	var rz []string
	for _, r := range fo.readyz {
		rz = append(rz, fmt.Sprintf("%s 503 after %s, 200 again %s after the kill", r.name, fmtDur(r.down), fmtDur(r.up)))
		f.expect(r.down >= 0 && r.up >= 0, "%s: /readyz did not say 503 while a master it reads was down and 200 once its replica took over (503 after %s, 200 after %s)",
			r.name, fmtDur(r.down), fmtDur(r.up))
	}
	f.add("/readyz during the failover", strings.Join(rz, "; "))
	var stalls []string
	worst := time.Duration(-1)
	for _, n := range fo.shards {
		d, ok := fo.stalls[n]
		if !ok {
			stalls = append(stalls, fmt.Sprintf("%d: none within %s", n, clusterStallWatch))
			worst = clusterStallWatch
			continue
		}
		stalls = append(stalls, fmt.Sprintf("%d: %s", n, round(d)))
		worst = max(worst, d)
	}
	f.add("stall after the failover", fmt.Sprintf("%s (kill to the first new result, per shard of the killed master: %s; bound %s)",
		fmtDur(worst), strings.Join(stalls, ", "), clusterStallBound))
	f.expect(worst >= 0 && worst < clusterStallBound, "the killed master's shards answered again after %s, bound %s", fmtDur(worst), clusterStallBound)

	time.Sleep(time.Second)
	stopProducer()
	prod := <-prodCh
	if err := <-prodErr; err != nil {
		f.fail("%v", err)
	}
	f.add("producer", fmt.Sprintf("%d jobs confirmed on a replica (XADD + WAIT 1) at %d/s in %s; %d XADDs repeated after an error, %d written again because WAIT did not confirm them",
		prod.written, clusterRate, round(prod.took), prod.xaddRetries, prod.unconfirmed))
	finishCluster(ctx, c, w, f, prod)
	for _, n := range []string{"cluster-1", "cluster-2b"} {
		if err := procs[n].term(15 * time.Second); err != nil {
			f.fail("%s did not exit 0 after SIGTERM: %v", n, err)
		}
	}
}

// clusterStallWatch bounds the wait for a failed-over shard's first result.
const clusterStallWatch = 30 * time.Second

// failoverRun is what failover saw.
type failoverRun struct {
	old, promoted string
	shards        []int // the shards the killed master served
	atKill        int64
	promotedIn    time.Duration
	rejoinedIn    time.Duration         // kill to the old master back as a replica, in sync
	stalls        map[int]time.Duration // per shard: kill to its first new result
	readyz        []readySeen
}

// readySeen is when a process's /readyz said 503 after a kill, and when
// 200 again after the promotion (-1: never).
type readySeen struct {
	name     string
	down, up time.Duration
}

// failover SIGKILLs the master of shard's keys, waits until its replica
// took over, restarts the old master (it rejoins as the new master's
// replica: until then the shards have no replica, and a producer that
// waits for one to confirm its writes waits too), and measures how long each shard of that master went without
// a new result, and what each rtmanager's /readyz said meanwhile.
func failover(ctx context.Context, w *clusterWorld, shard int, procs []*rtm) (failoverRun, error) {
	var fo failoverRun
	old, err := w.cl.MasterOf(ctx, w.shards[shard].jobs)
	if err != nil {
		return fo, err
	}
	for n, k := range w.shards {
		m, err := w.cl.MasterOf(ctx, k.jobs)
		if err != nil {
			return fo, err
		}
		if m == old {
			fo.shards = append(fo.shards, n)
		}
	}
	fo.old = old.Addr()
	fo.atKill = w.resultsLen(ctx)
	if err := old.Kill(); err != nil {
		return fo, err
	}
	killedAt := time.Now()
	stalls := make(chan map[int]time.Duration, 1)
	go func() { stalls <- watchResume(ctx, w.rdb, w.shards, fo.shards, killedAt) }()
	readyz := make(chan []readySeen, 1)
	promotedAt := make(chan time.Time, 1)
	go func() { readyz <- watchReadyz(procs, killedAt, promotedAt) }()
	promoted, err := w.cl.WaitPromoted(ctx, w.shards[shard].jobs, old)
	if err != nil {
		promotedAt <- time.Time{}
		<-readyz
		<-stalls
		return fo, err
	}
	fo.promotedIn = time.Since(killedAt)
	promotedAt <- time.Now()
	fo.promoted = promoted.Addr()
	if err := old.Restart(); err != nil {
		<-readyz
		<-stalls
		return fo, fmt.Errorf("restart the old master: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = w.cl.WaitReady(rctx)
	cancel()
	if err != nil {
		<-readyz
		<-stalls
		return fo, fmt.Errorf("old master back as a replica: %w", err)
	}
	fo.rejoinedIn = time.Since(killedAt)
	fo.stalls = <-stalls
	fo.readyz = <-readyz
	return fo, nil
}

// watchResume polls the result streams of the given shards until each has
// an entry written after killedAt (its id's time is the new master's
// clock, the same host's); it returns kill to that entry, per shard.
func watchResume(ctx context.Context, rdb *redis.ClusterClient, keys []streamKeys, shards []int, killedAt time.Time) map[int]time.Duration {
	out := map[int]time.Duration{}
	from := killedAt.UnixMilli()
	for time.Since(killedAt) < clusterStallWatch && len(out) < len(shards) && ctx.Err() == nil {
		for _, n := range shards {
			if _, done := out[n]; done {
				continue
			}
			last, err := rdb.XRevRangeN(ctx, keys[n].results, "+", "-", 1).Result()
			if err == nil && len(last) == 1 && msOfID(last[0].ID) > from {
				out[n] = time.Duration(msOfID(last[0].ID)-from) * time.Millisecond
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out
}

// watchReadyz polls each process's /readyz from the kill until it says 200
// after the promotion (or 15 s after it), and says when it went 503 and
// when it was 200 again.
func watchReadyz(procs []*rtm, killedAt time.Time, promotedAt <-chan time.Time) []readySeen {
	st := make([]readySeen, len(procs))
	for i, p := range procs {
		st[i] = readySeen{p.name, -1, -1}
	}
	var promoted time.Time
	for {
		select {
		case p := <-promotedAt:
			if p.IsZero() {
				return nil
			}
			promoted = p
		default:
		}
		all := true
		for i, p := range procs {
			if st[i].up >= 0 {
				continue
			}
			code := p.readyz()
			switch {
			case code == http.StatusServiceUnavailable && st[i].down < 0:
				st[i].down = time.Since(killedAt)
			case code == http.StatusOK && !promoted.IsZero():
				st[i].up = time.Since(killedAt)
			}
			if st[i].up < 0 {
				all = false
			}
		}
		if all || (!promoted.IsZero() && time.Since(promoted) > 15*time.Second) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return st
}

// finishCluster waits until every shard is drained, checks every shard's
// streams and the games, and reports the figures.
func finishCluster(ctx context.Context, c *contract, w *clusterWorld, f *figures, prod waitedProd) {
	drainedIn, err := waitDrained(ctx, w.rdb, w.jobKeys(), 2*time.Minute)
	if err != nil {
		f.fail("%v", err)
	}
	f.add("drained after producer", fmtDur(drainedIn))
	rep, per, err := c.checkShards(ctx, w.rdb, w.shards)
	if err != nil {
		f.fail("checker: %v", err)
		return
	}
	onStream := map[string]bool{} // by shard key and entry id
	for n, r := range per {
		for _, j := range r.jobs {
			onStream[w.shards[n].jobs+" "+j.ID] = true
		}
	}
	lost := 0
	for i, id := range prod.ids {
		if id != "" && !onStream[prod.keys[i]+" "+id] {
			lost++
		}
	}
	// Every job names a running game: the right answer is success (its
	// first stop) or success/replay_no_op, whatever failed.
	falseFailures := rep.Results - rep.Outcomes["success"] - rep.Outcomes["success/replay_no_op"]
	f.add("jobs (confirmed by WAIT)", prod.written)
	f.add("jobs on the streams", rep.Jobs)
	f.add("results", rep.Results)
	f.add("jobs answered", rep.Answered)
	f.add("missing", rep.Missing)
	f.add("duplicated", rep.Duplicates)
	f.add("false failures", falseFailures)
	f.add("results for unknown jobs", rep.Unknown)
	f.add("dead letters", rep.DeadLetters)
	f.add("contract violations", rep.ContractFails)
	f.add("outcomes", rep.outcomes())
	f.add("jobs per shard", perShard(per))
	f.expect(lost == 0, "%d jobs confirmed by WAIT are not on their job stream", lost)
	f.expect(rep.ok(), "stream check failed: %s", strings.Join(rep.Examples, "; "))
	f.expect(falseFailures == 0, "%d jobs of running games answered with a failure (%s)", falseFailures, rep.outcomes())
	f.expect(rep.DeadLetters == 0, "%d valid jobs dead-lettered", rep.DeadLetters)
	stopped, not, err := gamesStopped(ctx, w.rdb, w.games, w.store.RecordKey)
	if err != nil {
		f.fail("read game records: %v", err)
	}
	f.add("games stopped", fmt.Sprintf("%d/%d", stopped, len(w.games)))
	f.expect(stopped == len(w.games), "games not stopped: %s", strings.Join(not, ", "))
}

// perShard is the least and most jobs of a shard.
func perShard(per []*checkReport) string {
	n := make([]int, len(per))
	for i, r := range per {
		n[i] = r.Jobs
	}
	sort.Ints(n)
	if len(n) == 0 {
		return "-"
	}
	return fmt.Sprintf("%d to %d over %d shards", n[0], n[len(n)-1], len(n))
}

func ints(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = itoa(x)
	}
	return strings.Join(s, ", ")
}
