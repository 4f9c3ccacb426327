package process_test

import (
	"bufio"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/stopruntime"
)

type child struct {
	cmd  *exec.Cmd
	done chan error
	out  *bufio.Reader
}

// start runs a command in its own process group, reaped in the background.
func start(t *testing.T, name string, args ...string) *child {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{cmd: cmd, done: make(chan error, 1), out: bufio.NewReader(out)}
	go func() { c.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = <-c.done
	})
	return c
}

func (c *child) line(t *testing.T) string {
	t.Helper()
	l, err := c.out.ReadString('\n')
	require.NoError(t, err)
	return strings.TrimSpace(l)
}

func (c *child) waitExit(t *testing.T) *exec.ExitError {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err // for the cleanup
		var ee *exec.ExitError
		require.ErrorAs(t, err, &ee)
		return ee
	case <-time.After(10 * time.Second):
		t.Fatal("child did not exit")
		return nil
	}
}

func signalOf(ee *exec.ExitError) syscall.Signal {
	return ee.Sys().(syscall.WaitStatus).Signal()
}

func TestStopSIGTERM(t *testing.T) {
	c := start(t, "sleep", "300")
	id, err := process.IDForPID(c.cmd.Process.Pid)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(id, "pid:"+strconv.Itoa(c.cmd.Process.Pid)+":start:"), id)

	d := process.New(process.Options{})
	began := time.Now()
	alive, err := d.Alive(id)
	require.NoError(t, err)
	require.True(t, alive)
	require.NoError(t, d.Stop(context.Background(), id, 5*time.Second))
	assert.Less(t, time.Since(began), 4*time.Second, "SIGTERM should have been enough")
	assert.Equal(t, syscall.SIGTERM, signalOf(c.waitExit(t)))

	// Idempotent: the second stop finds it gone.
	require.ErrorIs(t, d.Stop(context.Background(), id, time.Second), stopruntime.ErrGone)
}

func TestStopEscalatesToSIGKILL(t *testing.T) {
	c := start(t, "sh", "-c", `trap "" TERM; echo ready; while :; do sleep 0.05; done`)
	require.Equal(t, "ready", c.line(t))
	id, err := process.IDForPID(c.cmd.Process.Pid)
	require.NoError(t, err)

	d := process.New(process.Options{})
	grace := 300 * time.Millisecond
	began := time.Now()
	require.NoError(t, d.Stop(context.Background(), id, grace))
	assert.GreaterOrEqual(t, time.Since(began), grace)
	assert.Equal(t, syscall.SIGKILL, signalOf(c.waitExit(t)))
}

func TestStopSignalsWholeGroup(t *testing.T) {
	c := start(t, "sh", "-c", `sleep 300 & echo $!; wait`)
	kidPID, err := strconv.Atoi(c.line(t))
	require.NoError(t, err)
	kidID, err := process.IDForPID(kidPID)
	require.NoError(t, err)
	id, err := process.IDForPID(c.cmd.Process.Pid)
	require.NoError(t, err)

	d := process.New(process.Options{})
	require.NoError(t, d.Stop(context.Background(), id, 5*time.Second))
	_ = c.waitExit(t)
	// The grandchild got the group's SIGTERM too (reaped by init, or a zombie:
	// both count as gone).
	require.Eventually(t, func() bool {
		alive, err := d.Alive(kidID)
		return err == nil && !alive
	}, 5*time.Second, 20*time.Millisecond)
}

func TestRecycledPIDIsNotSignalled(t *testing.T) {
	c := start(t, "sleep", "300")
	id, err := process.IDForPID(c.cmd.Process.Pid)
	require.NoError(t, err)
	pid, ticks, err := process.ParseID(id)
	require.NoError(t, err)

	// Same pid, another start time: what a recycled pid looks like.
	stale := process.FormatID(pid, ticks+1)
	require.ErrorIs(t, process.New(process.Options{}).Stop(context.Background(), stale, time.Second), stopruntime.ErrGone)
	select {
	case _ = <-c.done:
		t.Fatal("process with a recycled pid was signalled")
	case <-time.After(200 * time.Millisecond):
	}
}

func TestStopUnknownPIDIsGone(t *testing.T) {
	// pid_max is at most 2^22, so this pid cannot exist.
	id := process.FormatID(1<<22+17, 1)
	require.ErrorIs(t, process.New(process.Options{}).Stop(context.Background(), id, time.Second), stopruntime.ErrGone)
}

func TestBadIDIsPermanent(t *testing.T) {
	for _, id := range []string{"", "1234", "pid:abc:start:1", "pid:1:start:1", "pid:0:start:1", "pid:-5:start:1", "pid:12:start:x", "docker:abc"} {
		err := process.New(process.Options{}).Stop(context.Background(), id, time.Second)
		require.Error(t, err, id)
		require.NotErrorIs(t, err, stopruntime.ErrGone, id)
		assert.NotErrorIs(t, err, stopruntime.ErrTransient, id)
	}
}

func TestCancelledWaitIsTransient(t *testing.T) {
	c := start(t, "sh", "-c", `trap "" TERM; echo ready; while :; do sleep 0.05; done`)
	require.Equal(t, "ready", c.line(t))
	id, err := process.IDForPID(c.cmd.Process.Pid)
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	d := process.New(process.Options{})
	require.ErrorIs(t, d.Stop(ctx, id, time.Minute), stopruntime.ErrTransient)
	// A retry resumes and finishes the job.
	require.NoError(t, d.Stop(context.Background(), id, 100*time.Millisecond))
	assert.Equal(t, syscall.SIGKILL, signalOf(c.waitExit(t)))
}

func TestIDForPIDOfMissingProcess(t *testing.T) {
	_, err := process.IDForPID(1<<22 + 17)
	require.Error(t, err)
}
