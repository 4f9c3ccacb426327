package process

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The exit poller wakes exactly the waits whose process exited: the
// others time out, and a pidfd whose wait timed out is waited for again
// (re-armed) and woken by its exit.
func TestExitPollerWakesOnlyTheExitedAndRearms(t *testing.T) {
	var x exitPoller
	require.NoError(t, x.start())
	var pids []int
	var fds []*pidfd
	for range 4 {
		pid, _, _ := engine(t, `echo $$; while :; do sleep 0.05; done`)
		p := openPidfd(pid)
		if p == nil {
			t.Skip("no pidfd_open here")
		}
		t.Cleanup(p.close)
		pids, fds = append(pids, pid), append(fds, p)
	}
	// A first wait on each times out: nothing has exited.
	for i, p := range fds {
		gone, err := x.wait(context.Background(), p, pids[i], 10*time.Millisecond)
		require.NoError(t, err)
		require.False(t, gone)
	}
	type res struct {
		i    int
		gone bool
	}
	out := make(chan res, len(fds))
	for i, p := range fds {
		go func() {
			gone, err := x.wait(context.Background(), p, pids[i], map[bool]time.Duration{true: 30 * time.Second, false: 500 * time.Millisecond}[i < 2])
			assert.NoError(t, err)
			out <- res{i, gone}
		}()
	}
	require.NoError(t, syscall.Kill(-pids[0], syscall.SIGKILL))
	require.NoError(t, syscall.Kill(-pids[1], syscall.SIGKILL))
	got := map[int]bool{}
	for range fds {
		r := <-out
		got[r.i] = r.gone
	}
	assert.Equal(t, map[int]bool{0: true, 1: true, 2: false, 3: false}, got)
	x.mu.Lock()
	assert.Empty(t, x.waits, "every wait removed itself")
	x.mu.Unlock()
}
