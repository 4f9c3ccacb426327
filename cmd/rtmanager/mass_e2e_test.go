package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/stopruntime"
)

// engine is a game engine that saves its game for a while after SIGTERM:
// a process in its own process group that, on SIGTERM, marks it got it (a
// file in markDir, when set), sleeps `delay` seconds and exits.
type engine struct {
	id     string
	exited chan struct{}
}

func startEngines(t *testing.T, w *world, n int, delay, markDir string) []*engine {
	t.Helper()
	out := make([]*engine, n)
	for i := range out {
		mark := ""
		if markDir != "" {
			mark = filepath.Join(markDir, fmt.Sprint(i))
		}
		// perl (essential on Debian and Ubuntu) handles SIGTERM in process:
		// no fork or exec per stop, so a few hundred engines stopping at
		// once cost the machine little.
		cmd := exec.Command("perl", "-e", `$SIG{TERM} = sub { if ($ARGV[0] ne "") { open(my $f, ">", $ARGV[0]); close($f) } select(undef, undef, undef, $ARGV[1]); exit 0 }; sleep 1 while 1`, mark, delay)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		require.NoError(t, cmd.Start())
		e := &engine{exited: make(chan struct{})}
		go func() { _ = cmd.Wait(); close(e.exited) }()
		t.Cleanup(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-e.exited
		})
		id, err := process.IDForPID(cmd.Process.Pid)
		require.NoError(t, err)
		e.id = id
		_, err = w.svc.Register(context.Background(), stopruntime.Record{GameID: fmt.Sprintf("g%d", i), Runtime: "process", ContainerID: id})
		require.NoError(t, err)
		out[i] = e
	}
	return out
}

// stopAll writes one stop job per engine in one round trip.
func stopAll(t *testing.T, w *world, n int) map[string]bool {
	t.Helper()
	pipe := w.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, n)
	for i := range cmds {
		cmds[i] = pipe.XAdd(context.Background(), &redis.XAddArgs{Stream: jobs, Values: []string{"game_id", fmt.Sprintf("g%d", i), "reason", "platform_shutdown"}})
	}
	_, err := pipe.Exec(context.Background())
	require.NoError(t, err)
	ids := map[string]bool{}
	for _, c := range cmds {
		ids[c.Val()] = true
	}
	return ids
}

// checkOncePerJob: every job answered exactly once, with success, every
// record stopped, no dead letter.
func checkOncePerJob(t *testing.T, w *world, ids map[string]bool, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		pend, err := w.rdb.XPending(context.Background(), jobs, "rtmanager").Result()
		return err == nil && pend.Count == 0
	}, 30*time.Second, 20*time.Millisecond)
	seen := map[string]int{}
	for _, r := range w.entries(t, results) {
		seen[r["job_id"]]++
		assert.Equal(t, "success", r["outcome"], r["game_id"])
		assert.Empty(t, r["error_code"], r["game_id"])
	}
	assert.Len(t, seen, len(ids))
	for id := range ids {
		assert.Equal(t, 1, seen[id], "job %s", id)
	}
	for i := 0; i < n; i++ {
		rec, _, err := w.svc.Get(context.Background(), fmt.Sprintf("g%d", i))
		require.NoError(t, err)
		assert.Equal(t, stopruntime.StatusStopped, rec.Status, rec.GameID)
	}
	l, _ := w.rdb.XLen(context.Background(), dead).Result()
	assert.Zero(t, l)
}

// With default flags, stops waiting for their engines hold no worker: 300
// engines that take 2 s to exit are all stopped in about 2 s, where 64
// workers waiting one stop each took ceil(300/64) × 2 s = 10 s.
func TestEndToEndMassStopWaitsHoldNoWorker(t *testing.T) {
	const n, delay = 300, 2 * time.Second
	w := newWorld(t)
	engines := startEngines(t, w, n, "2", "")
	startBinary(t, "--redis-url", w.srv.URL(), "--runtime", "process")

	began := time.Now()
	ids := stopAll(t, w, n)
	w.waitLen(t, results, n)
	took := time.Since(began)
	t.Logf("%d stops of %s engines answered in %s (one stop per worker: %s)", n, delay, took, 5*delay)
	assert.GreaterOrEqual(t, took, delay, "answered before the engines exited")
	assert.Less(t, took, 7*time.Second, "stops waited in workers")
	checkOncePerJob(t, w, ids, n)
	for _, e := range engines {
		select {
		case <-e.exited:
		case <-time.After(10 * time.Second):
			t.Fatalf("engine %s still runs", e.id)
		}
	}
}

// kill -9 while many stops wait for their engines: the jobs stay pending,
// their records stopping; the next start claims them, resumes each stop
// and answers each job exactly once.
func TestEndToEndKill9DuringWaitsResumesEachStopOnce(t *testing.T) {
	const n = 60
	w := newWorld(t)
	marks := t.TempDir()
	startEngines(t, w, n, "4", marks)
	args := []string{"--redis-url", w.srv.URL(), "--runtime", "process", "--claim-idle", "1s"}
	p := startBinary(t, args...)

	ids := stopAll(t, w, n)
	require.Eventually(t, func() bool {
		got, _ := os.ReadDir(marks)
		return len(got) == n
	}, 20*time.Second, 10*time.Millisecond, "every engine got its SIGTERM")
	require.NoError(t, p.cmd.Process.Kill())
	err := <-p.done
	p.done <- err
	pend, err := w.rdb.XPending(context.Background(), jobs, "rtmanager").Result()
	require.NoError(t, err)
	require.Positive(t, pend.Count, "the stops were still waiting at the kill")
	for i := 0; i < n; i++ {
		rec, _, err := w.svc.Get(context.Background(), fmt.Sprintf("g%d", i))
		require.NoError(t, err)
		if rec.Status == stopruntime.StatusStopping {
			assert.Contains(t, ids, rec.StoppingJobID, "owned by its job")
		}
	}

	startBinary(t, args...)
	w.waitLen(t, results, n)
	checkOncePerJob(t, w, ids, n)
}
