package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"galaxy/rtmanager/internal/testredis"
)

// logSink keeps a process's output in a file and counts its lines, so a
// scenario can tell how many lines were written during a window.
type logSink struct {
	mu    sync.Mutex
	f     *os.File
	lines atomic.Int64
}

func newLogSink(path string) (*logSink, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &logSink{f: f}, nil
}

func (s *logSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines.Add(int64(bytes.Count(p, []byte{'\n'})))
	return s.f.Write(p)
}

func (s *logSink) Lines() int64 { return s.lines.Load() }

func (s *logSink) Path() string { return s.f.Name() }

// Text is everything written so far.
func (s *logSink) Text() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := os.ReadFile(s.f.Name())
	return string(b)
}

func (s *logSink) close() { _ = s.f.Close() }

// rtm is one running rtmanager process.
type rtm struct {
	name     string // consumer name
	cmd      *exec.Cmd
	stderr   *logSink
	stdout   *logSink
	httpAddr string
	done     chan struct{}
	exitErr  error
}

// env is what every scenario shares: the built binaries, a work directory
// for logs, and every process started, so all of them are ended at exit.
type env struct {
	binDir string
	work   string
	ctx    context.Context

	mu    sync.Mutex
	procs []*rtm
	seq   int
}

func (e *env) rtmanager() string    { return filepath.Join(e.binDir, "rtmanager") }
func (e *env) rtmanagerctl() string { return filepath.Join(e.binDir, "rtmanagerctl") }

// start runs the built rtmanager as consumer name with the runtime none and
// the given extra flags; it does not wait for readiness.
func (e *env) start(name, redisURL string, extra ...string) (*rtm, error) {
	addr, err := testredis.FreeAddr()
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.seq++
	seq := e.seq
	e.mu.Unlock()
	base := filepath.Join(e.work, fmt.Sprintf("%03d-%s", seq, name))
	stderr, err := newLogSink(base + ".stderr")
	if err != nil {
		return nil, err
	}
	stdout, err := newLogSink(base + ".stdout")
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--redis-url", redisURL, "--runtime", "none", "--consumer", name,
		"--http-addr", addr, "--log-format", "json",
	}, extra...)
	cmd := exec.Command(e.rtmanager(), args...)
	cmd.Stderr, cmd.Stdout = stderr, stdout
	// Never outlive rtchaos, whatever ends it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start rtmanager: %w", err)
	}
	p := &rtm{name: name, cmd: cmd, stderr: stderr, stdout: stdout, httpAddr: addr, done: make(chan struct{})}
	go func() {
		p.exitErr = cmd.Wait()
		stderr.close()
		stdout.close()
		close(p.done)
	}()
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	return p, nil
}

// startReady starts rtmanager and waits until /readyz says 200.
func (e *env) startReady(name, redisURL string, extra ...string) (*rtm, time.Duration, error) {
	t0 := time.Now()
	p, err := e.start(name, redisURL, extra...)
	if err != nil {
		return nil, 0, err
	}
	if err := p.waitStatus(http.StatusOK, 30*time.Second); err != nil {
		p.kill()
		return nil, 0, fmt.Errorf("%s never became ready: %w; stderr tail: %s", name, err, tail(p.stderr.Text(), 800))
	}
	return p, time.Since(t0), nil
}

// killAll ends every process still running.
func (e *env) killAll() {
	e.mu.Lock()
	procs := append([]*rtm(nil), e.procs...)
	e.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
}

func (p *rtm) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *rtm) kill() {
	if !p.alive() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// term sends SIGTERM and waits up to timeout, then kills.
func (p *rtm) term(timeout time.Duration) error {
	if !p.alive() {
		return p.exitErr
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.exitErr
	case <-time.After(timeout):
		p.kill()
		return errors.New("did not stop after SIGTERM")
	}
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

// readyz is /readyz's status code, 0 when the server did not answer.
func (p *rtm) readyz() int {
	resp, err := httpClient.Get("http://" + p.httpAddr + "/readyz")
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

func (p *rtm) metrics() (string, error) {
	resp, err := httpClient.Get("http://" + p.httpAddr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// waitStatus polls /readyz until it reports code, the process exits, or
// timeout passes.
func (p *rtm) waitStatus(code int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if !p.alive() {
			return fmt.Errorf("process exited: %v", p.exitErr)
		}
		if p.readyz() == code {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("/readyz did not report %d within %s", code, timeout)
}

// metricValue sums the samples of a metric family whose label set contains
// every given label pair.
func metricValue(text, name string, labels ...string) float64 {
	var sum float64
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			if !strings.Contains(rest, labels[i]+`="`+labels[i+1]+`"`) {
				ok = false
			}
		}
		if !ok {
			continue
		}
		var v float64
		if _, err := fmt.Sscan(rest[strings.LastIndexByte(rest, ' ')+1:], &v); err == nil {
			sum += v
		}
	}
	return sum
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
