package process

import (
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The exit waits of the runtime watch set up MaxWaitSetups at a time (a
// reconciliation starts thousands at once), and every one of them is set
// up in the end and sees its process exit.
func TestWaitSetupsAreBounded(t *testing.T) {
	if p := openPidfd(1); p == nil {
		t.Skip("no pidfd_open here: waits poll /proc")
	} else {
		p.close()
	}
	const n, bound = 5, 2
	d := New(Options{MaxWaitSetups: bound})
	var inSetup, most atomic.Int64
	release := make(chan struct{})
	d.procRead = func(string) {
		cur := inSetup.Add(1)
		for m := most.Load(); cur > m && !most.CompareAndSwap(m, cur); m = most.Load() {
		}
		<-release
		inSetup.Add(-1)
	}
	var ids []string
	var pids []int
	for range n {
		pid, _, _ := engine(t, `echo $$; while :; do sleep 0.05; done`)
		d0 := New(Options{})
		id, err := d0.IDForPID(pid)
		require.NoError(t, err)
		ids, pids = append(ids, id), append(pids, pid)
	}
	var wg sync.WaitGroup
	ended := make(chan string, n)
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := d.WaitExit(context.Background(), id)
			if err == nil && !st.Running {
				ended <- id
			}
		}()
	}
	require.Eventually(t, func() bool { return inSetup.Load() == bound }, 10*time.Second, time.Millisecond)
	require.Never(t, func() bool { return inSetup.Load() > bound }, 300*time.Millisecond, time.Millisecond,
		"more than %d waits set up at once", bound)
	close(release)
	for _, pid := range pids {
		require.NoError(t, syscall.Kill(-pid, syscall.SIGKILL))
	}
	wg.Wait()
	close(ended)
	assert.Len(t, ended, n, "every wait saw its process end")
	assert.LessOrEqual(t, most.Load(), int64(bound))
}

func TestParseIDRejectsWhatFormatIDDoesNotMake(t *testing.T) {
	pid, ticks, err := ParseID(FormatID(4242, 777))
	require.NoError(t, err)
	assert.Equal(t, 4242, pid)
	assert.Equal(t, uint64(777), ticks)
	for _, bad := range []string{"", "pid:12", "pid:12:start:", "pid::start:5", "pid:12:start:34:5", "pid:12:foo:start:3",
		"xpid:12:start:3", "pid:1:start:3", "pid:-5:start:3", "pid:12:start:-3", "pid:12:stop:3"} {
		_, _, err := ParseID(bad)
		assert.Error(t, err, "%q", bad)
	}
}
