package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// engineScript is run by bash with $1 = engines to start and $2 = the delay
// in seconds. Each engine is a forked subshell: one process, one thread,
// about 110 kB of its own memory, no exec. It installs its SIGTERM trap,
// prints its pid (so a pid is only read once its trap is in place) and
// blocks reading fd 3. On SIGTERM it reads fd 3 again with the delay as
// timeout (a builtin: no fork or exec on the stop path, which at thousands
// of stops at once would cost more CPU than rtmanager) and exits 0.
//
// Fd 3 is a pipe whose only writer is rtbench: nothing is ever written, and
// when rtbench dies, even by SIGKILL, every read ends at EOF and the engines
// exit. Engines are forked by sub-spawners of at most 100 each, which stay
// to reap them (`wait`), so none lingers as a zombie: one bash forking
// thousands of background jobs slows down with each (its job table), 10×
// at 2,000. Measured on 2 cores: a forked subshell costs less CPU than an
// exec of dash or bash per engine (with a 270 kB bash, or an exec of sleep
// on SIGTERM) and a twentieth of the memory of a static Go binary (6
// threads, 2 MB), whose threads would also exhaust pid_max at 10,000.
const engineScript = `exec 3<&0 </dev/null
delay=$2
spawn() {
  i=0
  while [ "$i" -lt "$1" ]; do
    ( trap 'read -t "$delay" <&3; exit 0' TERM; echo "$BASHPID"; read <&3 ) &
    i=$((i+1))
  done
  wait
}
left=$1
while [ "$left" -gt 0 ]; do
  k=$((left < 100 ? left : 100))
  spawn "$k" &
  left=$((left - k))
done
wait`

// enginePool is a set of engine processes, all in the process group of the
// bash that started them.
type enginePool struct {
	pids    []int
	spawner *exec.Cmd
	done    chan error
	keep    *os.File // write end of the engines' fd 3; closing it ends them
}

// engines says which engines a mass stop starts: the C engine built from
// engine.c (cEngine, its path) or, when empty, the bash subshells.
type engines struct {
	kind    string // engineKindC or engineKindBash
	cEngine string
}

// startEngines starts n engines that exit delay after SIGTERM and returns
// once every one has its trap in place. On error everything it started is
// killed.
func startEngines(ctx context.Context, kind engines, n int, delay time.Duration) (*enginePool, error) {
	var cmd *exec.Cmd
	if kind.kind == engineKindC {
		cmd = exec.Command(kind.cEngine, strconv.Itoa(n), strconv.FormatInt(delay.Milliseconds(), 10))
	} else {
		bash, err := exec.LookPath("bash")
		if err != nil {
			return nil, fmt.Errorf("mass stop engines need bash: %w", err)
		}
		secs := strconv.FormatFloat(delay.Seconds(), 'f', 3, 64)
		cmd = exec.Command(bash, "-c", engineScript, "rtbench-engines", strconv.Itoa(n), secs)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("engine pipe: %w", err)
	}
	defer r.Close() // the spawner holds its own copy
	cmd.Stdin = r
	cmd.Stderr = os.Stderr
	// Its own group: one kill(-pgid) ends the spawners and every engine.
	// The engines do not lead a group, so rtmanager's process driver
	// signals each alone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("engine spawner: %w", err)
	}
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, fmt.Errorf("start engine spawner: %w", err)
	}
	p := &enginePool{spawner: cmd, done: make(chan error, 1), keep: w}
	read := make(chan error, 1)
	go func() {
		read <- readPids(out, n, func(pid int) { p.pids = append(p.pids, pid) })
		// Read on until the spawner closes its stdout, so Wait does not
		// race the reads.
		_, _ = io.Copy(io.Discard, out)
		p.done <- cmd.Wait()
	}()
	select {
	case err = <-read:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func readPids(out io.Reader, n int, add func(int)) error {
	sc := bufio.NewScanner(out)
	for i := 0; i < n; i++ {
		if !sc.Scan() {
			return fmt.Errorf("engine spawner ended after %d of %d engines (ulimit -u, pid_max or memory?): %v", i, n, sc.Err())
		}
		pid, err := strconv.Atoi(sc.Text())
		if err != nil {
			return fmt.Errorf("engine spawner: bad pid %q", sc.Text())
		}
		add(pid)
	}
	return nil
}

// close kills the spawner's group (spawners and engines) and reaps the
// spawner. Safe to call more than once.
func (p *enginePool) close() {
	if p.keep == nil {
		return
	}
	_ = p.keep.Close()
	p.keep = nil
	_ = syscall.Kill(-p.spawner.Process.Pid, syscall.SIGKILL)
	select {
	case _ = <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// wait waits up to d for the spawner to end on its own: every engine has
// exited and been reaped.
func (p *enginePool) wait(d time.Duration) error {
	select {
	case err := <-p.done:
		p.done <- err // for close
		return nil
	case <-time.After(d):
		return errors.New("engines still running")
	}
}
