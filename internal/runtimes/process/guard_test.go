package process_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/stopruntime"
)

// refusedAndAlive asserts a stop is refused permanently and the process was
// not signalled.
func refusedAndAlive(t *testing.T, d *process.Driver, id string, done <-chan error, want string) {
	t.Helper()
	err := d.Stop(context.Background(), id, 100*time.Millisecond)
	require.ErrorIs(t, err, process.ErrRefused)
	require.NotErrorIs(t, err, stopruntime.ErrTransient)
	require.NotErrorIs(t, err, stopruntime.ErrGone)
	assert.Contains(t, err.Error(), want)
	alive, err := d.Alive(id)
	require.NoError(t, err)
	assert.True(t, alive, "the refused process must not have been signalled")
	select {
	case _ = <-done:
		t.Fatal("the refused process exited")
	default:
	}
}

// A process in rtmanager's own process group (here: the test's) is never
// signalled, nor is its group.
func TestStopRefusesOwnProcessGroup(t *testing.T) {
	cmd := exec.Command("sleep", "300") // no Setpgid: it shares our group
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = <-done })
	id, err := process.IDForPID(cmd.Process.Pid)
	require.NoError(t, err)
	refusedAndAlive(t, process.New(process.Options{}), id, done, "own process group")
}

// rtmanager's parent (its supervisor) is never signalled.
func TestStopRefusesParent(t *testing.T) {
	id, err := process.IDForPID(os.Getppid())
	require.NoError(t, err)
	err = process.New(process.Options{}).Stop(context.Background(), id, 100*time.Millisecond)
	require.ErrorIs(t, err, process.ErrRefused)
	assert.Contains(t, err.Error(), "parent")
}

// Only processes of the allowed uids are signalled.
func TestStopRefusesOtherUIDs(t *testing.T) {
	c := start(t, "sleep", "300")
	id, err := process.IDForPID(c.cmd.Process.Pid)
	require.NoError(t, err)
	other := os.Getuid() + 4242
	refusedAndAlive(t, process.New(process.Options{AllowUIDs: []int{other}}), id, c.done, "uid "+strconv.Itoa(os.Getuid()))

	// AnyUID lifts the guard; the default (our own uid) allows it too.
	require.NoError(t, process.New(process.Options{AllowUIDs: []int{other}, AnyUID: true}).Stop(context.Background(), id, 5*time.Second))
	c2 := start(t, "sleep", "300")
	id2, err := process.IDForPID(c2.cmd.Process.Pid)
	require.NoError(t, err)
	require.NoError(t, process.New(process.Options{}).Stop(context.Background(), id2, 5*time.Second))
}

// A /proc read that fails for another reason than ENOENT says nothing about
// the process: it is a transient error, never "gone" (which would mark a
// running game stopped).
func TestProcReadErrorIsNotGone(t *testing.T) {
	proc := t.TempDir()
	const pid = 4242
	// A directory where the stat file should be: reading it fails with
	// EISDIR, as EMFILE or EACCES would (and unlike those, also as root).
	require.NoError(t, os.MkdirAll(filepath.Join(proc, strconv.Itoa(pid), "stat"), 0o755))
	d := process.New(process.Options{ProcDir: proc})
	id := process.FormatID(pid, 1)

	alive, err := d.Alive(id)
	require.Error(t, err)
	assert.False(t, alive)
	require.ErrorIs(t, err, stopruntime.ErrTransient)

	err = d.Stop(context.Background(), id, 100*time.Millisecond)
	require.ErrorIs(t, err, stopruntime.ErrTransient)
	require.NotErrorIs(t, err, stopruntime.ErrGone)

	// A missing entry is gone.
	gone := process.FormatID(pid+1, 1)
	alive, err = d.Alive(gone)
	require.NoError(t, err)
	assert.False(t, alive)
	require.ErrorIs(t, d.Stop(context.Background(), gone, 100*time.Millisecond), stopruntime.ErrGone)
}
