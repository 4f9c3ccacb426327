// Package docker is the runtime driver for Docker containers, through the
// official Engine API client (github.com/moby/moby/client, the module that
// succeeds github.com/docker/docker/client and, unlike that +incompatible
// module, carries its own go.mod with a small dependency set).
//
// The Engine API version is negotiated with the daemon (GET /_ping says the
// newest version the daemon speaks; the driver uses the lower of that and
// the client's newest), unless it is fixed by Options.APIVersion or, as the
// Docker CLI does, by $DOCKER_API_VERSION. MinAPIVersion is the oldest
// version the driver supports.
package docker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errhttp"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"

	"galaxy/rtmanager/internal/stopruntime"
)

// MinAPIVersion is the oldest Engine API version the driver supports: API
// 1.40 is Docker Engine 19.03. The client library (moby/moby/client) refuses
// to negotiate anything older, and everything the driver sends (stop with
// `t`, inspect, unpause) is unchanged since long before it.
const MinAPIVersion = "1.40"

// EnvAPIVersion fixes the API version as it does for the Docker CLI;
// Options.APIVersion wins over it.
const EnvAPIVersion = client.EnvOverrideAPIVersion

// ErrUnsupportedAPIVersion says the configured version, or the daemon's, is
// one the driver cannot use. It is permanent: retrying does not help.
var ErrUnsupportedAPIVersion = errors.New("unsupported Docker Engine API version")

// tryAgain are the answers that mean "try again later".
var tryAgain = []int{http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// Options configure a Driver. Zero values take the documented defaults.
type Options struct {
	// Host is the daemon address, e.g. "unix:///var/run/docker.sock" or
	// "tcp://10.0.0.5:2375". Default: $DOCKER_HOST, else the platform's
	// default socket.
	Host string
	// APIVersion fixes the Engine API version ("1.41") instead of
	// negotiating it. Default: $DOCKER_API_VERSION, else negotiated.
	APIVersion string
	// HTTPClient replaces the client's HTTP client (TLS and so on). Default
	// the Docker client's own ($DOCKER_CERT_PATH and $DOCKER_TLS_VERIFY are
	// honoured as by the Docker CLI). Its *http.Transport, if it has one, is
	// cloned and keeps Concurrency idle connections.
	HTTPClient *http.Client
	// Concurrency is the most Engine API requests in flight at once; more
	// wait for a slot (see AcquireSlot). Default DefaultConcurrency; at most
	// MaxConcurrency.
	Concurrency int
}

// DefaultConcurrency is Options.Concurrency's default (and
// --docker-concurrency's): see docs/operations.md for why.
const DefaultConcurrency = 32

// MaxConcurrency bounds Options.Concurrency: each slot may hold a
// connection to the daemon.
const MaxConcurrency = 4096

// Driver implements stopruntime.Driver for Docker containers.
type Driver struct {
	slots *slots
	ops   []client.Opt
	fixed string // the fixed API version; "" when negotiated
	cur   atomic.Pointer[session]
}

// session is one client and its negotiation. A daemon downgrade replaces the
// session: the client's version cannot be changed safely while other stops
// use it.
type session struct {
	cli        *client.Client
	mu         sync.Mutex // one negotiation at a time
	negotiated atomic.Bool
}

// New builds a Driver; it does not contact the daemon. A malformed API
// version, or one older than MinAPIVersion, is an error wrapping
// ErrUnsupportedAPIVersion.
func New(opts Options) (*Driver, error) {
	fixed := strings.TrimPrefix(strings.TrimSpace(opts.APIVersion), "v")
	source := "--docker-api-version"
	if fixed == "" {
		fixed = strings.TrimPrefix(strings.TrimSpace(os.Getenv(EnvAPIVersion)), "v")
		source = EnvAPIVersion
	}
	if fixed != "" {
		if err := checkVersion(fixed); err != nil {
			return nil, fmt.Errorf("%s=%s: %w", source, fixed, err)
		}
	}
	n := opts.Concurrency
	if n == 0 {
		n = DefaultConcurrency
	}
	if n < 1 || n > MaxConcurrency {
		return nil, fmt.Errorf("new docker driver: concurrency %d: want 1 to %d", n, MaxConcurrency)
	}
	ops, err := clientOpts(opts, n)
	if err != nil {
		return nil, fmt.Errorf("new docker driver: %w", err)
	}
	if fixed != "" {
		ops = append(ops, client.WithAPIVersion(fixed))
	}
	cli, err := client.New(ops...)
	if err != nil {
		return nil, fmt.Errorf("new docker driver: %w", err)
	}
	d := &Driver{slots: newSlots(n), ops: ops, fixed: fixed}
	d.cur.Store(&session{cli: cli})
	return d, nil
}

// checkVersion accepts MAJOR.MINOR at or above MinAPIVersion.
func checkVersion(v string) error {
	var major, minor int
	if n, err := fmt.Sscanf(v, "%d.%d", &major, &minor); err != nil || n != 2 || fmt.Sprintf("%d.%d", major, minor) != v {
		return fmt.Errorf("%w: %q is not MAJOR.MINOR", ErrUnsupportedAPIVersion, v)
	}
	if versions.LessThan(v, MinAPIVersion) {
		return fmt.Errorf("%w: API %s is older than %s (Docker Engine 19.03), the oldest this rtmanager supports", ErrUnsupportedAPIVersion, v, MinAPIVersion)
	}
	return nil
}

// Close releases the client's idle connections.
func (d *Driver) Close() error { return d.cur.Load().cli.Close() }

// Host is the daemon address in use.
func (d *Driver) Host() string { return d.cur.Load().cli.DaemonHost() }

// Versions is what Check learnt.
type Versions struct {
	// Daemon is the newest API version the daemon speaks (its /_ping).
	Daemon string
	// Used is the version in request paths: negotiated or fixed.
	Used string
	// Negotiated is false when the version is fixed.
	Negotiated bool
}

// Check pings the daemon, negotiates the API version when it is not fixed,
// and checks the daemon can serve the version in use. An unreachable daemon
// is an error wrapping stopruntime.ErrTransient; a daemon older than
// MinAPIVersion, or older than the fixed version, wraps
// ErrUnsupportedAPIVersion. rtmanager calls it at start-up and for /readyz.
func (d *Driver) Check(ctx context.Context) (Versions, error) {
	s := d.cur.Load()
	ping, err := d.negotiate(ctx, s, true)
	if err != nil {
		return Versions{}, err
	}
	v := Versions{Daemon: ping.APIVersion, Used: s.cli.ClientVersion(), Negotiated: d.fixed == ""}
	if d.fixed != "" && versions.LessThan(ping.APIVersion, d.fixed) {
		return v, fmt.Errorf("%w: the Docker daemon at %s speaks API %s at most, older than the fixed %s (--docker-api-version or %s); unset it to negotiate",
			ErrUnsupportedAPIVersion, d.Host(), ping.APIVersion, d.fixed, EnvAPIVersion)
	}
	return v, nil
}

// negotiate pings the daemon and, unless the version is fixed, negotiates
// the session's version once. With always it pings even when nothing is
// left to negotiate.
func (d *Driver) negotiate(ctx context.Context, s *session, always bool) (client.PingResult, error) {
	need := d.fixed == "" && !s.negotiated.Load()
	if !need && !always {
		return client.PingResult{}, nil
	}
	if need {
		s.mu.Lock()
		defer s.mu.Unlock()
		need = !s.negotiated.Load() // another stop may have negotiated meanwhile
	}
	ping, err := s.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: need})
	if err != nil {
		if cerrdefs.IsInvalidArgument(err) && strings.Contains(err.Error(), "minimum supported API version") {
			return ping, fmt.Errorf("%w: the Docker daemon at %s speaks API %s; the oldest this rtmanager supports is %s (Docker Engine 19.03): %w",
				ErrUnsupportedAPIVersion, d.Host(), ping.APIVersion, MinAPIVersion, err)
		}
		return ping, fmt.Errorf("docker daemon at %s unreachable (GET /_ping): %w: %w", d.Host(), stopruntime.ErrTransient, err)
	}
	if ping.APIVersion == "" {
		return ping, fmt.Errorf("%w: the Docker daemon at %s did not say its API version (older than API 1.25)", ErrUnsupportedAPIVersion, d.Host())
	}
	if versions.LessThan(ping.APIVersion, MinAPIVersion) {
		return ping, fmt.Errorf("%w: the Docker daemon at %s speaks API %s; the oldest this rtmanager supports is %s (Docker Engine 19.03)",
			ErrUnsupportedAPIVersion, d.Host(), ping.APIVersion, MinAPIVersion)
	}
	if need {
		s.negotiated.Store(true)
	}
	return ping, nil
}

// renegotiate replaces session s by a new one, which negotiates again.
func (d *Driver) renegotiate(s *session) {
	fresh, err := client.New(d.ops...)
	if err != nil {
		return // keep the old one; it built before, so this does not happen
	}
	if d.cur.CompareAndSwap(s, &session{cli: fresh}) {
		_ = s.cli.Close() // idle connections only; stops in flight go on
	} else {
		_ = fresh.Close()
	}
}

// Stop is POST /v<version>/containers/{id}/stop?t=<grace in seconds,
// rounded up>: the daemon sends the container's stop signal and kills it
// after t seconds. The container is named by id, id prefix or name. 204, or
// 304 (already stopped), is success; 404 (no such container) is
// stopruntime.ErrGone. Transient (wrapping stopruntime.ErrTransient): the
// daemon unreachable, the caller's deadline, 429, 502, 503 and 504, and
// "client version … is too new" from a negotiated version (the daemon was
// downgraded: the version is negotiated again). Any other answer is
// permanent. A paused container that the daemon refuses to stop (Podman
// answers 500; Docker unpauses it itself) is unpaused and stopped.
//
// The stop holds one of the driver's slots throughout, waiting for one
// first unless ctx carries one (AcquireSlot): the daemon's grace clock
// starts only when it gets the request, after the wait. A ctx done while
// waiting is transient.
func (d *Driver) Stop(ctx context.Context, containerID string, grace time.Duration) error {
	if containerID == "" {
		return errors.New("docker stop: empty container id")
	}
	ctx, release, err := d.slots.acquire(ctx)
	if err != nil {
		return fmt.Errorf("docker stop %s: %w", containerID, err)
	}
	defer release()
	s := d.cur.Load()
	if _, err := d.negotiate(ctx, s, false); err != nil {
		return fmt.Errorf("docker stop %s: %w", containerID, err)
	}
	secs := int(math.Ceil(grace.Seconds()))
	if secs < 0 {
		secs = 0
	}
	err = stop(ctx, s.cli, containerID, secs)
	if err != nil && (cerrdefs.IsInternal(err) || cerrdefs.IsConflict(err)) && paused(ctx, s.cli, containerID) {
		if _, uerr := s.cli.ContainerUnpause(ctx, containerID, client.ContainerUnpauseOptions{}); uerr == nil {
			err = stop(ctx, s.cli, containerID, secs)
		}
	}
	return d.classify(s, containerID, err)
}

func stop(ctx context.Context, cli *client.Client, id string, secs int) error {
	_, err := cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
	return err
}

func paused(ctx context.Context, cli *client.Client, id string) bool {
	res, err := cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	return err == nil && res.Container.State != nil && res.Container.State.Paused
}

func (d *Driver) classify(s *session, id string, err error) error {
	switch {
	case err == nil:
		return nil
	case client.IsErrConnectionFailed(err),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("docker stop %s: %w: %w", id, stopruntime.ErrTransient, err)
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("docker stop %s: %w: %w", id, stopruntime.ErrGone, err)
	case cerrdefs.IsInvalidArgument(err) && strings.Contains(err.Error(), "is too new"):
		if d.fixed != "" {
			return fmt.Errorf("docker stop %s: API version %s fixed by --docker-api-version or %s is too new for the daemon: %w", id, d.fixed, EnvAPIVersion, err)
		}
		d.renegotiate(s)
		return fmt.Errorf("docker stop %s: %w: daemon now speaks an older API; negotiating again: %w", id, stopruntime.ErrTransient, err)
	}
	// The client keeps the answer's status only as an error category.
	for _, code := range tryAgain {
		if errors.Is(err, errhttp.ToNative(code)) {
			return fmt.Errorf("docker stop %s: %w: %w", id, stopruntime.ErrTransient, err)
		}
	}
	return fmt.Errorf("docker stop %s: %w", id, err)
}
