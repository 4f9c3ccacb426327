package process_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/process"
)

// exitsAfterTERM is an engine that exits (code 3) 200 ms after SIGTERM.
func exitsAfterTERM(t *testing.T) (*child, string) {
	c := start(t, "sh", "-c", `trap "sleep 0.2; exit 3" TERM; echo ready; while :; do sleep 0.05; done`)
	require.Equal(t, "ready", c.line(t))
	id, err := process.IDForPID(c.cmd.Process.Pid)
	require.NoError(t, err)
	return c, id
}

// A stop sees its process exit at once, without polling: with a poll
// interval of a minute, it still returns soon after the exit.
func TestWaitSeesTheExitWithoutPolling(t *testing.T) {
	c, id := exitsAfterTERM(t)
	d := process.New(process.Options{PollInterval: time.Minute})
	began := time.Now()
	require.NoError(t, d.Stop(context.Background(), id, 30*time.Second))
	assert.Less(t, time.Since(began), 10*time.Second, "the exit was noticed by polling")
	assert.Equal(t, 3, c.waitExit(t).ExitCode(), "exited on its own")
}

// Without pidfds the wait polls /proc, backing off, and still stops and
// escalates.
func TestPollOnlyWaitStopsAndEscalates(t *testing.T) {
	c, id := exitsAfterTERM(t)
	d := process.New(process.Options{PollOnly: true})
	require.NoError(t, d.Stop(context.Background(), id, 30*time.Second))
	assert.Equal(t, 3, c.waitExit(t).ExitCode(), "exited on its own")

	c = start(t, "sh", "-c", `trap "" TERM; echo ready; while :; do sleep 0.05; done`)
	require.Equal(t, "ready", c.line(t))
	id, err := process.IDForPID(c.cmd.Process.Pid)
	require.NoError(t, err)
	require.NoError(t, d.Stop(context.Background(), id, 300*time.Millisecond))
	assert.Equal(t, syscall.SIGKILL, signalOf(c.waitExit(t)))
}

// Many stops wait at once, each on its own pidfd, and all see their
// process exit.
func TestManyConcurrentWaits(t *testing.T) {
	const n = 40
	d := process.New(process.Options{PollInterval: time.Minute})
	ids := make([]string, n)
	kids := make([]*child, n)
	for i := range ids {
		kids[i], ids[i] = exitsAfterTERM(t)
	}
	errs := make(chan error, n)
	began := time.Now()
	for _, id := range ids {
		go func() { errs <- d.Stop(context.Background(), id, 30*time.Second) }()
	}
	for range ids {
		require.NoError(t, <-errs)
	}
	assert.Less(t, time.Since(began), 20*time.Second)
	for _, k := range kids {
		assert.Equal(t, 3, k.waitExit(t).ExitCode())
	}
}
