// Package testredis runs a private redis-server on a free loopback port in
// its own directory, for tests, benchmarks and demos. It can stop, kill -9 and
// restart the server on the same port and data directory, so fault tests can
// take Redis away and bring it back. There is no fake Redis in this project:
// everything talks to the real server started here.
package testredis

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Binary is the server executable looked up on PATH.
const Binary = "redis-server"

// ErrNotInstalled says redis-server is missing and how to get it.
var ErrNotInstalled = errors.New("redis-server not found on PATH: run 'make test' (it installs it) or 'sudo apt-get install redis-server'")

// Options configure a server. The zero value is an in-memory server.
type Options struct {
	// AppendOnly turns on the append-only file with `appendfsync always`, so a
	// kill -9 loses nothing that was acknowledged. Default off.
	AppendOnly bool
	// Dir is the data directory; default a new temporary directory, removed
	// by Close.
	Dir string
	// Args are further config directives as command-line arguments, for
	// instance []string{"--requirepass", "secret"}.
	Args []string
	// StartTimeout bounds the wait for the server to answer PING; default 10s.
	StartTimeout time.Duration
}

// Server is one running (or stopped) redis-server.
type Server struct {
	opts    Options
	port    int
	dir     string
	ownsDir bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// New starts a server.
func New(opts Options) (*Server, error) {
	if _, err := exec.LookPath(Binary); err != nil {
		return nil, ErrNotInstalled
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 10 * time.Second
	}
	s := &Server{opts: opts, dir: opts.Dir}
	if s.dir == "" {
		d, err := os.MkdirTemp("", "testredis-")
		if err != nil {
			return nil, fmt.Errorf("testredis: make data dir: %w", err)
		}
		s.dir, s.ownsDir = d, true
	}
	var lastErr error
	// A port found free can be taken before redis-server binds it; try again.
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s.port = port
		if lastErr = s.start(); lastErr == nil {
			return s, nil
		}
	}
	s.cleanupDir()
	return nil, lastErr
}

// TB is the part of testing.TB that Start uses. Naming it here instead of
// importing "testing" keeps that package (and its flags) out of the binaries
// that link testredis: rtbench, rtchaos and rtdemo.
type TB interface {
	Helper()
	Fatal(args ...any)
	Cleanup(func())
}

// Start starts a server for the test and stops it when the test ends.
func Start(tb TB, opts ...Options) *Server {
	tb.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	s, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Port is the TCP port, the same across restarts.
func (s *Server) Port() int { return s.port }

// Dir is the data directory, the same across restarts.
func (s *Server) Dir() string { return s.dir }

// URL is a redis:// URL for database 0, without credentials.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Client returns a new client for the server; the caller closes it.
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr()})
}

// LogFile is the path of the server's log.
func (s *Server) LogFile() string { return filepath.Join(s.dir, "redis.log") }

func (s *Server) args() []string {
	a := []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--logfile", "redis.log",
		"--daemonize", "no",
		"--save", "",
	}
	if s.opts.AppendOnly {
		a = append(a, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		a = append(a, "--appendonly", "no")
	}
	return append(a, s.opts.Args...)
}

func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("testredis: server already running")
	}
	cmd := exec.Command(Binary, s.args()...)
	cmd.Dir = s.dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	// Own process group, so a test binary killed mid-run does not leave the
	// server behind with the terminal's signals.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testredis: start %s: %w", Binary, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done

	deadline := time.Now().Add(s.opts.StartTimeout)
	for {
		select {
		case <-done:
			s.cmd = nil
			log, _ := os.ReadFile(s.LogFile())
			return fmt.Errorf("testredis: redis-server exited at start on port %d: %s%s", s.port, stderr.String(), tail(log))
		default:
		}
		if c, err := net.DialTimeout("tcp", s.Addr(), 100*time.Millisecond); err == nil {
			_ = c.Close()
			if s.ping() {
				return nil
			}
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			s.cmd = nil
			return fmt.Errorf("testredis: redis-server on port %d did not answer within %s", s.port, s.opts.StartTimeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ping is true once the server answers, even if it wants a password; a
// server still loading its data set answers LOADING and is not ready yet.
func (s *Server) ping() bool {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil {
		return false
	}
	reply := string(buf[:n])
	return reply == "+PONG\r\n" || bytes.HasPrefix(buf[:n], []byte("-NOAUTH"))
}

// Running reports whether the server process is alive.
func (s *Server) Running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Stop ends the server with SIGTERM (it writes its append-only file and exits)
// and waits for it.
func (s *Server) Stop() error { return s.signal(syscall.SIGTERM) }

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() error { return s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	return nil
}

// Restart starts the server again on the same port and data directory. With
// AppendOnly it comes back with the data it had.
func (s *Server) Restart() error {
	var err error
	// The port can stay in TIME_WAIT for a moment on some kernels.
	for attempt := 0; attempt < 20; attempt++ {
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Close stops the server and removes a data directory it created.
func (s *Server) Close() error {
	err := s.Kill()
	s.cleanupDir()
	return err
}

func (s *Server) cleanupDir() {
	if s.ownsDir {
		_ = os.RemoveAll(s.dir)
	}
}

// FlushAll empties the server, for tests that share one server.
func (s *Server) FlushAll(ctx context.Context) error {
	c := s.Client()
	defer c.Close()
	return c.FlushAll(ctx).Err()
}

// FreeAddr returns a loopback host:port that was free a moment ago, for a
// test or a tool that starts a server of its own (rtmanager's HTTP port).
func FreeAddr() (string, error) {
	p, err := freePort()
	if err != nil {
		return "", err
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)), nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testredis: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte) string {
	const n = 600
	if len(b) > n {
		b = b[len(b)-n:]
	}
	if len(b) == 0 {
		return ""
	}
	return "; log: " + string(b)
}
