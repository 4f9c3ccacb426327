package process

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"galaxy/rtmanager/internal/runtimes"
)

// The runtime watch asks the driver whether a process still runs
// (Inspect) and waits for it to end (WaitExit). Exit codes are known only
// for processes this rtmanager started (its children: Start's wait reaps
// them and keeps the status here); any other process's status went to its
// own parent.

// maxExits bounds the exit statuses kept for the watch; the oldest go
// first (the watch reads a status within seconds of the exit).
const maxExits = 4096

// exits keeps the exit statuses of the children that ended and a channel
// per running child that closes when it ends.
type exits struct {
	mu     sync.Mutex
	status map[string]*os.ProcessState
	order  []string
	done   map[string]chan struct{}
}

func (e *exits) started(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done == nil {
		e.done = map[string]chan struct{}{}
		e.status = map[string]*os.ProcessState{}
	}
	e.done[id] = make(chan struct{})
}

func (e *exits) ended(id string, ps *os.ProcessState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ps != nil {
		if len(e.order) >= maxExits {
			delete(e.status, e.order[0])
			e.order = e.order[1:]
		}
		e.status[id] = ps
		e.order = append(e.order, id)
	}
	if ch, ok := e.done[id]; ok {
		close(ch)
		delete(e.done, id)
	}
}

// lookup returns the child's end channel (nil if not a running child) and
// its status once ended.
func (e *exits) lookup(id string) (<-chan struct{}, *os.ProcessState) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.done[id], e.status[id]
}

// Inspect reports whether the process runs and, for an ended child of this
// rtmanager, how it ended.
func (d *Driver) Inspect(_ context.Context, containerID string) (runtimes.State, error) {
	pid, start, err := ParseID(containerID)
	if err != nil {
		return runtimes.State{}, err
	}
	alive, err := d.alive(pid, start)
	if err != nil {
		return runtimes.State{}, err
	}
	if alive {
		return runtimes.State{Running: true}, nil
	}
	_, ps := d.exits.lookup(containerID)
	return endState(pid, ps), nil
}

// WaitExit blocks until the process ends (or ctx ends: the error is
// ctx's), then reports how it ended. A child is waited for through its
// reaper; any other process through a pidfd (or /proc polling).
func (d *Driver) WaitExit(ctx context.Context, containerID string) (runtimes.State, error) {
	pid, start, err := ParseID(containerID)
	if err != nil {
		return runtimes.State{}, err
	}
	if done, _ := d.exits.lookup(containerID); done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return runtimes.State{}, ctx.Err()
		}
		_, ps := d.exits.lookup(containerID)
		return endState(pid, ps), nil
	}
	for {
		gone, err := d.waitEnd(ctx, pid, start, time.Hour)
		if ctx.Err() != nil {
			return runtimes.State{}, ctx.Err()
		}
		if err != nil {
			return runtimes.State{}, err
		}
		if gone {
			_, ps := d.exits.lookup(containerID)
			return endState(pid, ps), nil
		}
	}
}

// endState describes an ended process; ps is nil when its status is not
// ours to know.
func endState(pid int, ps *os.ProcessState) runtimes.State {
	if ps == nil {
		return runtimes.State{Reason: fmt.Sprintf("process %d is gone (its exit status went to its parent)", pid)}
	}
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if !ok {
		code := int64(ps.ExitCode())
		return runtimes.State{ExitCode: &code, Reason: fmt.Sprintf("process %d exited with code %d", pid, code)}
	}
	if ws.Signaled() {
		code := 128 + int64(ws.Signal())
		return runtimes.State{ExitCode: &code, Reason: fmt.Sprintf("process %d was killed by signal %d (%s)", pid, int(ws.Signal()), ws.Signal())}
	}
	code := int64(ws.ExitStatus())
	return runtimes.State{ExitCode: &code, Reason: fmt.Sprintf("process %d exited with code %d", pid, code)}
}

// waitEnd waits up to wait for a process that is not this rtmanager's
// child to end: on a pidfd (checked to name our process after it was
// opened), else by polling /proc.
//
// The set-up (a pidfd, a /proc read) runs MaxWaitSetups at a time: a
// reconciliation starts a wait per running game at once, thousands at
// start-up, and so many runnable goroutines would queue the job workers
// behind them. Once set up, a wait costs nothing until the process ends.
func (d *Driver) waitEnd(ctx context.Context, pid int, start uint64, wait time.Duration) (bool, error) {
	if !d.opts.PollOnly && d.poller.start() == nil {
		select {
		case d.waitSetups <- struct{}{}:
		case <-ctx.Done():
			return false, ctx.Err()
		}
		p := openPidfd(pid)
		if p != nil {
			defer p.close()
			ok, err := d.alive(pid, start)
			<-d.waitSetups
			if err != nil || !ok {
				return err == nil, err
			}
			return d.poller.wait(ctx, p, pid, wait)
		}
		<-d.waitSetups
	}
	return d.pollGone(ctx, pid, start, wait)
}
