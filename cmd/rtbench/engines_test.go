package main

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Both engine kinds: SIGTERM ends an engine after the delay, with status 0
// seen by nobody but its spawner; the others stay until the pool closes,
// and closing it (rtbench's end) ends them.
func TestEnginesExitTheDelayAfterSIGTERM(t *testing.T) {
	for _, want := range []string{engineKindC, engineKindBash} {
		t.Run(want, func(t *testing.T) {
			kind, cleanup, err := massEngines(want, t.Logf)
			t.Cleanup(cleanup)
			require.NoError(t, err)
			require.Equal(t, want, kind.kind)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			const delay = 300 * time.Millisecond
			pool, err := startEngines(ctx, kind, 3, delay)
			require.NoError(t, err)
			t.Cleanup(pool.close)
			require.Len(t, pool.pids, 3)

			fds := make([]int, len(pool.pids))
			for i, pid := range pool.pids {
				fds[i], err = unix.PidfdOpen(pid, 0)
				require.NoError(t, err)
				t.Cleanup(func() { _ = unix.Close(fds[i]) })
			}
			began := time.Now()
			require.NoError(t, unix.PidfdSendSignal(fds[0], syscall.SIGTERM, nil, 0))
			require.True(t, exited(fds[0], 20*time.Second), "the signalled engine exits")
			assert.GreaterOrEqual(t, time.Since(began), delay, "not before the delay")
			assert.False(t, exited(fds[1], 0), "the others run on")

			pool.close()
			assert.True(t, exited(fds[1], 20*time.Second), "closing the pool ends the rest")
			assert.True(t, exited(fds[2], 20*time.Second))
		})
	}
}

// exited reports whether the process of pidfd fd has exited within d.
func exited(fd int, d time.Duration) bool {
	p := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(d)
	for {
		n, err := unix.Poll(p, int(max(time.Until(deadline), 0).Milliseconds()))
		if err == unix.EINTR {
			continue
		}
		return n > 0
	}
}
