package main

import (
	"context"
	"os/exec"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/runtimewatch"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// transitions counts the watch's transition scripts.
type transitions struct {
	*runtimestore.Store
	n atomic.Int64
}

func (s *transitions) Transition(ctx context.Context, key string, maxLen int64, c runtimestore.Change) (string, error) {
	s.n.Add(1)
	return s.Store.Transition(ctx, key, maxLen, c)
}

// A stop job's stop of a watched engine is recorded by the stop alone: the
// watch forgets the game when the stop begins, so the engine's exit costs
// it no script (in a mass stop, one per game).
func TestStopMakesTheWatchForgetTheGame(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	store := runtimestore.New(rdb, runtimestore.Options{})
	drv := process.New(process.Options{})
	svc, err := stopruntime.New(store, map[string]stopruntime.Driver{stopruntime.RuntimeProcess: drv}, stopruntime.Options{StopGrace: 5 * time.Second})
	require.NoError(t, err)

	cmd := exec.Command("sleep", "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // not in our group: the guard would refuse it
	require.NoError(t, cmd.Start())
	go func() { _ = cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	id, err := process.IDForPID(cmd.Process.Pid)
	require.NoError(t, err)
	_, err = store.Register(context.Background(), stopruntime.Record{GameID: "g1", Runtime: stopruntime.RuntimeProcess, ContainerID: id, Status: stopruntime.StatusRunning})
	require.NoError(t, err)

	doc, err := api.Load()
	require.NoError(t, err)
	ch, _ := doc.ChannelByAddress(runtimejobs.RuntimeEventsChannelPath)
	counted := &transitions{Store: store}
	var reconciled atomic.Int64
	w, err := runtimewatch.New(counted, runtimewatch.Options{
		Drivers: map[string]runtimewatch.Inspector{stopruntime.RuntimeProcess: drv}, Events: ch,
		ReconcileInterval: 50 * time.Millisecond, ProbeInterval: -1, Metrics: reconcileCounter{&reconciled},
	})
	require.NoError(t, err)
	w.Start()
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	require.Eventually(t, func() bool { return reconciled.Load() >= 1 }, 10*time.Second, 5*time.Millisecond)

	stopper := &forgetOnBegin{Stopper: svc}
	stopper.watch.Store(w)
	st, err := stopper.Begin(context.Background(), stopruntime.Input{GameID: "g1", Reason: "game_finished", OpSource: stopruntime.OpSourceLobbyStream, SourceRef: "1-0"})
	require.NoError(t, err)
	res, err := st.Finish(context.Background())
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, res.Outcome)

	// Two more reconciliations: whatever the watch would write, it has.
	target := reconciled.Load() + 2
	require.Eventually(t, func() bool { return reconciled.Load() >= target }, 10*time.Second, 5*time.Millisecond)
	assert.Zero(t, counted.n.Load(), "no transition script for a stopped game")
	n, err := rdb.XLen(context.Background(), runtimejobs.RuntimeEventsChannelPath).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "no runtime event")
}

type reconcileCounter struct{ n *atomic.Int64 }

func (reconcileCounter) RuntimeEvent(string)                        {}
func (reconcileCounter) ProbeFailed()                               {}
func (c reconcileCounter) Reconciled(time.Duration, map[string]int) { c.n.Add(1) }
