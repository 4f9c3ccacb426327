// Package testengine runs a real Docker-compatible container engine for
// tests and the demo, the way internal/testredis runs a real Redis: rootful
// Podman from the Debian packages (installed when missing, as root), its
// Docker Engine API served on a private unix socket, and a test game-engine
// image built offline from ./gameengine. New says in one line why it cannot
// when it cannot; Require turns that into a skip on a developer machine and
// into a failure in CI (CI=true or RTMANAGER_REQUIRE_ENGINE=1).
//
// Containers use the host network and listen on 127.0.0.1 only; nothing
// ever connects to a container address. Every container carries the Label
// of the process that made it; Close removes them, and New removes those of
// processes that are gone.
package testengine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/moby/moby/client"

	"galaxy/rtmanager/internal/runtimes/process"
)

const (
	// Label marks the containers made here; its value is the owner process
	// ("pid:<pid>:start:<ticks>", see internal/runtimes/process).
	Label = "galaxy.rtmanager.testengine"
	// GameLabel carries the game id of a container.
	GameLabel = "galaxy.game_id"
)

// Options configure New. Zero values take the documented defaults.
type Options struct {
	// GameEngineBinary is a static (CGO_ENABLED=0) build of ./gameengine to
	// put in the image. Default: built with `go build`, which needs the
	// working directory inside the rtmanager module.
	GameEngineBinary string
	// StartTimeout bounds the wait for the API to answer; default 30s.
	StartTimeout time.Duration
}

// Engine is a running Podman API service with the test image built.
type Engine struct {
	dir   string
	sock  string
	cmd   *exec.Cmd
	done  chan struct{}
	cli   *client.Client
	image string
	owner string
	conf  string

	// StartedIn is how long the service took to answer /_ping.
	StartedIn time.Duration
	// ImageIn is how long building (or finding) the image took.
	ImageIn time.Duration
}

// New installs the engine's packages when missing, starts the API service
// and builds the test image. Its error is one line saying why it cannot.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 30 * time.Second
	}
	if err := ensureInstalled(); err != nil {
		return nil, err
	}
	owner, err := process.IDForPID(os.Getpid())
	if err != nil {
		return nil, fmt.Errorf("testengine: %w", err)
	}
	dir, err := os.MkdirTemp("", "testengine-")
	if err != nil {
		return nil, fmt.Errorf("testengine: make dir: %w", err)
	}
	e := &Engine{dir: dir, sock: filepath.Join(dir, "podman.sock"), owner: owner, conf: filepath.Join(dir, "containers.conf")}
	if err := e.start(ctx, opts); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

func (e *Engine) start(ctx context.Context, opts Options) error {
	conf, err := containersConf()
	if err != nil {
		return err
	}
	if err := os.WriteFile(e.conf, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("testengine: write containers.conf: %w", err)
	}
	logf, err := os.Create(e.LogFile())
	if err != nil {
		return fmt.Errorf("testengine: %w", err)
	}
	defer logf.Close()
	t0 := time.Now()
	cmd := exec.Command("podman", "system", "service", "--time=0", "unix://"+e.sock)
	cmd.Env = e.Env()
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group; killed with the process that started it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testengine: start podman system service: %w", err)
	}
	e.cmd, e.done = cmd, make(chan struct{})
	go func() { _ = cmd.Wait(); close(e.done) }()
	if err := e.waitPing(ctx, opts.StartTimeout); err != nil {
		return err
	}
	e.StartedIn = time.Since(t0)

	e.cli, err = client.New(client.WithHost(e.Host()))
	if err != nil {
		return fmt.Errorf("testengine: client: %w", err)
	}
	e.reapOrphans(ctx)
	t1 := time.Now()
	if err := e.buildImage(ctx, opts.GameEngineBinary); err != nil {
		return err
	}
	e.ImageIn = time.Since(t1)
	return nil
}

// containersConf is Podman's configuration for a machine without systemd
// whose limits cannot be raised: cgroupfs, events to a file, runc (crun
// refuses hybrid cgroups), and rlimits no higher than this process's hard
// limits (Podman's defaults fail with "setrlimit RLIMIT_NOFILE").
func containersConf() (string, error) {
	var nofile, nproc syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err != nil {
		return "", fmt.Errorf("testengine: getrlimit nofile: %w", err)
	}
	const rlimitNproc = 6 // RLIMIT_NPROC on Linux; not exported by package syscall
	if err := syscall.Getrlimit(rlimitNproc, &nproc); err != nil {
		return "", fmt.Errorf("testengine: getrlimit nproc: %w", err)
	}
	h := min(nofile.Max, 1<<20)
	n := min(nproc.Max, 32768)
	return fmt.Sprintf(`# Written by internal/testengine.
[containers]
default_ulimits = ["nofile=%d:%d", "nproc=%d:%d"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
runtime = "runc"

[network]
network_backend = "netavark"
`, h, h, n, n), nil
}

func (e *Engine) waitPing(ctx context.Context, timeout time.Duration) error {
	hc := e.HTTPClient()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-e.done:
			return fmt.Errorf("testengine: podman system service exited at start: %s", e.logTail())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := hc.Get("http://d/_ping"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("testengine: podman API did not answer /_ping within %s: %s", timeout, e.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// HTTPClient speaks HTTP over the engine's unix socket (any host name).
func (e *Engine) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", e.sock)
		},
	}}
}

// Host is the Docker host address of the engine, unix://….
func (e *Engine) Host() string { return "unix://" + e.sock }

// Socket is the path of the engine's unix socket.
func (e *Engine) Socket() string { return e.sock }

// Image is the test game-engine image.
func (e *Engine) Image() string { return e.image }

// Client is the engine's API client, owned by the Engine.
func (e *Engine) Client() *client.Client { return e.cli }

// Env is the environment for podman commands against this engine.
func (e *Engine) Env() []string { return append(os.Environ(), "CONTAINERS_CONF="+e.conf) }

// LogFile is the service's log.
func (e *Engine) LogFile() string { return filepath.Join(e.dir, "service.log") }

func (e *Engine) logTail() string {
	b, _ := os.ReadFile(e.LogFile())
	b = bytes.TrimSpace(b)
	if len(b) > 400 {
		b = b[len(b)-400:]
	}
	if len(b) == 0 {
		return "no output"
	}
	return string(bytes.ReplaceAll(b, []byte("\n"), []byte(" | ")))
}

// Close removes the containers this process made, stops the service and
// removes its directory.
func (e *Engine) Close() error {
	var errs []error
	if e.cli != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		errs = append(errs, e.RemoveAll(ctx))
		cancel()
		_ = e.cli.Close()
	}
	if e.cmd != nil {
		_ = e.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.done:
		case <-time.After(10 * time.Second):
			_ = e.cmd.Process.Kill()
			<-e.done
		}
	}
	errs = append(errs, os.RemoveAll(e.dir))
	return errors.Join(errs...)
}

// reapOrphans removes containers left by processes that are gone (a test
// binary killed before its Close).
func (e *Engine) reapOrphans(ctx context.Context) {
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", Label)})
	if err != nil {
		return
	}
	drv := process.New(process.Options{})
	for _, c := range list.Items {
		if alive, err := drv.Alive(c.Labels[Label]); err == nil && alive {
			continue
		}
		_, _ = e.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("testengine: find a free port: %w", err)
	}
	defer l.Close()
	return "127.0.0.1:" + strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}
