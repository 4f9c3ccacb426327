package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

// The Redis ceiling in a process of its own: rtbench runs itself again with
// these variables set, and that copy runs the ceiling's loop until SIGTERM.
// It shows what the process boundary costs the same work (its own garbage
// collector, its own scheduler's threads parking and waking on the two
// cores): the rtmanager binary pays that as well as what it adds.
const (
	ceilingChildAddrEnv  = "RTBENCH_CEILING_CHILD" // Redis address; set only in the child
	ceilingChildBatchEnv = "RTBENCH_CEILING_BATCH"
)

// ceilingChild is the child's whole life: 0 after SIGTERM or at the end of
// stdin (rtbench holds the pipe's other end, so the child ends with rtbench
// even when that is killed), 1 on an error.
func ceilingChild(getenv func(string) string, stdin io.Reader, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stdin)
		cancel()
	}()
	batch, err := strconv.Atoi(getenv(ceilingChildBatchEnv))
	if err != nil || batch < 1 {
		fmt.Fprintf(stderr, "rtbench ceiling child: %s=%q: want a positive count\n", ceilingChildBatchEnv, getenv(ceilingChildBatchEnv))
		return 1
	}
	c, err := newCeilingConsumer(ctx, getenv(ceilingChildAddrEnv), batch)
	if err != nil {
		fmt.Fprintln(stderr, "rtbench ceiling child:", err)
		return 1
	}
	defer c.close()
	if err := c.run(ctx); err != nil {
		fmt.Fprintln(stderr, "rtbench ceiling child:", err)
		return 1
	}
	return 0
}

// ceilingProcess is the ceiling's loop in a child process (rtbench's own
// executable), with --binary-env in its environment as the rtmanager
// binary has. Its CPU is counted when it has exited, as the binary's.
func ceilingProcess(batch int) pipeline {
	return func(ctx context.Context, e *env) (*instance, error) {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find rtbench's executable: %w", err)
		}
		cmd := exec.Command(exe)
		cmd.Env = append(append(os.Environ(), e.cfg.BinaryEnv...),
			ceilingChildAddrEnv+"="+e.srv.Addr(), ceilingChildBatchEnv+"="+strconv.Itoa(batch))
		stderr := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = io.Discard, stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, fmt.Errorf("the ceiling's process: %w", err)
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start the ceiling's process: %w", err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		exited := func(err error) error {
			if err != nil {
				return fmt.Errorf("the ceiling's process: %w; stderr: %s", err, stderr.String())
			}
			return nil
		}
		groupReady := waitGroupExists(e.rdb, ceilingGroup)
		return &instance{
			pids: []int{cmd.Process.Pid},
			ready: func(ctx context.Context) error {
				rctx, cancel := context.WithCancel(ctx)
				defer cancel()
				ready := make(chan error, 1)
				go func() { ready <- groupReady(rctx) }()
				select {
				case err := <-ready:
					return err
				case err := <-done:
					done <- err // for stop
					return fmt.Errorf("the ceiling's process exited before it consumed (%v); stderr: %s", err, stderr.String())
				}
			},
			stop: func() stopInfo {
				_ = cmd.Process.Signal(syscall.SIGTERM)
				_ = stdin.Close()
				select {
				case err := <-done:
					return stopInfo{err: exited(err)}
				case <-time.After(15 * time.Second):
					_ = cmd.Process.Kill()
					_ = <-done
					return stopInfo{err: fmt.Errorf("the ceiling's process did not exit within 15s of SIGTERM; stderr: %s", stderr.String())}
				}
			},
		}, nil
	}
}
