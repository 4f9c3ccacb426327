package process

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// engine starts `sh -c script` in its own process group and returns the
// pid the script prints first, its output after that and a channel closed
// when the sh exits.
func engine(t *testing.T, script string) (int, *bufio.Reader, <-chan struct{}) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	})
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	require.NoError(t, err)
	return pid, r, done
}

// A stop on a pidfd reads /proc once (the start time), not before every
// step: at thousands of stops at once those reads were most of rtmanager's
// CPU. The uids come from the pidfd where the kernel has PIDFD_GET_INFO.
func TestStopReadsProcOnce(t *testing.T) {
	pid, _, done := engine(t, `trap "exit 0" TERM; echo $$; while :; do sleep 0.05; done`)
	id, err := IDForPID(pid)
	require.NoError(t, err)
	if p := openPidfd(pid); p == nil {
		t.Skip("no pidfd_open here: stops poll /proc")
	} else {
		p.close()
	}

	d := New(Options{})
	var mu sync.Mutex
	reads := map[string]int{}
	d.procRead = func(name string) { mu.Lock(); reads[name]++; mu.Unlock() }
	require.NoError(t, d.Stop(context.Background(), id, 10*time.Second))
	<-done

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, 1, reads["stat"], "stat reads")
	if d.noPidfdInfo.Load() {
		assert.Equal(t, 1, reads["status"], "status reads without PIDFD_GET_INFO")
	} else {
		assert.Zero(t, reads["status"], "status reads with PIDFD_GET_INFO")
	}
}

// The uids PIDFD_GET_INFO gives are the status file's.
func TestPidfdUIDsMatchStatus(t *testing.T) {
	pid, _, _ := engine(t, `echo $$; exec sleep 300`)
	p := openPidfd(pid)
	if p == nil {
		t.Skip("no pidfd_open here")
	}
	defer p.close()
	got, err := p.uids()
	if errors.Is(err, errNoPidfdInfo) {
		t.Skip("no PIDFD_GET_INFO here (Linux before 6.13)")
	}
	require.NoError(t, err)
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	require.NoError(t, err)
	want, err := parseUIDs(status)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	// Once the process is gone and reaped, the pidfd says so.
	require.NoError(t, syscall.Kill(-pid, syscall.SIGKILL))
	require.Eventually(t, func() bool {
		_, err := p.uids()
		return errors.Is(err, syscall.ESRCH)
	}, 10*time.Second, 10*time.Millisecond)
}

// A process that does not lead its group is signalled alone through its
// pidfd: the rest of its group lives on.
func TestStopNonLeaderSignalsItAlone(t *testing.T) {
	kid, out, _ := engine(t, `sleep 300 & echo $!; wait; echo leader-still-here; sleep 300`)
	id, err := IDForPID(kid)
	require.NoError(t, err)
	d := New(Options{})
	require.NoError(t, d.Stop(context.Background(), id, 10*time.Second))
	alive, err := d.Alive(id)
	require.NoError(t, err)
	assert.False(t, alive)
	// The leader outlived its child: a group signal would have ended it
	// (and its output) too.
	line, err := out.ReadString('\n')
	require.NoError(t, err, "the group leader was signalled too")
	assert.Equal(t, "leader-still-here\n", line)
}
