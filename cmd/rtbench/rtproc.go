package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// rtProc is one rtmanager binary process with default flags but for Redis,
// the process runtime and a free HTTP port; its log goes to a file, which
// the caller removes when the run succeeded.
type rtProc struct {
	cmd     *exec.Cmd
	done    chan error
	logPath string
	once    sync.Once
	err     error
}

func startRTManager(ctx context.Context, bin, redisURL string, env []string) (*rtProc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.CreateTemp("", "rtbench-mass-*.log")
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p := &rtProc{logPath: logf.Name(), done: make(chan error, 1)}
	p.cmd = exec.Command(bin, "--redis-url", redisURL, "--runtime", "process", "--http-addr", addr)
	if len(env) > 0 {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start rtmanager: %w", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-rctx.Done():
			_ = p.stop()
			return nil, fmt.Errorf("rtmanager not ready: %w (log %s)", rctx.Err(), p.logPath)
		case err := <-p.done:
			p.done <- err
			_ = p.stop()
			return nil, fmt.Errorf("rtmanager exited: %v (log %s)", err, p.logPath)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop ends rtmanager with SIGTERM (SIGKILL after 15 s). Safe to call more
// than once.
func (p *rtProc) stop() error {
	p.once.Do(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		var err error
		select {
		case err = <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			err = <-p.done
			err = errors.Join(errors.New("rtmanager did not stop within 15s of SIGTERM"), err)
		}
		if err != nil {
			p.err = fmt.Errorf("rtmanager: %w (log %s)", err, p.logPath)
		}
	})
	return p.err
}

// procCPUSeconds is the user+system CPU a live process has used (fields 14
// and 15 of /proc/<pid>/stat, in USER_HZ ticks, 100 a second on Linux).
func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	s, _ := strconv.ParseFloat(f[12], 64)
	return (u + s) / 100
}
