// Package docker is the runtime driver for Docker containers, through the
// official Engine API client (github.com/moby/moby/client, the module that
// succeeds github.com/docker/docker/client and, unlike that +incompatible
// module, carries its own go.mod with a small dependency set).
//
// The API version is fixed (Options.APIVersion) rather than negotiated: no
// /_ping round trip before the first stop, and predictable request paths.
package docker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"

	"galaxy/rtmanager/internal/stopruntime"
)

// Options configure a Driver. Zero values take the documented defaults.
type Options struct {
	// Host is the daemon address, e.g. "unix:///var/run/docker.sock" or
	// "tcp://10.0.0.5:2375". Default: $DOCKER_HOST, else the platform's
	// default socket.
	Host string
	// APIVersion is the Engine API version used in request paths. Default
	// "1.47" (Docker Engine 27 and later).
	APIVersion string
	// HTTPClient replaces the client's HTTP client (TLS and so on). Default
	// the Docker client's own.
	HTTPClient *http.Client
}

// Driver implements stopruntime.Driver for Docker containers.
type Driver struct{ cli *client.Client }

// New builds a Driver; it does not contact the daemon.
func New(opts Options) (*Driver, error) {
	if opts.APIVersion == "" {
		opts.APIVersion = "1.47"
	}
	ops := []client.Opt{client.WithHostFromEnv(), client.WithAPIVersion(opts.APIVersion)}
	if opts.HTTPClient != nil {
		ops = append(ops, client.WithHTTPClient(opts.HTTPClient))
	}
	if opts.Host != "" {
		ops = append(ops, client.WithHost(opts.Host))
	}
	cli, err := client.New(ops...)
	if err != nil {
		return nil, fmt.Errorf("new docker driver: %w", err)
	}
	return &Driver{cli: cli}, nil
}

// Close releases the client's idle connections.
func (d *Driver) Close() error { return d.cli.Close() }

// Stop is POST /v<APIVersion>/containers/{id}/stop?t=<grace in seconds,
// rounded up>: the daemon sends the container's stop signal and kills it
// after t seconds. 204, or 304 (already stopped), is success; 404 (no such
// container) is stopruntime.ErrGone; a failed connection, a timeout or a 503
// wraps stopruntime.ErrTransient; any other answer is permanent.
func (d *Driver) Stop(ctx context.Context, containerID string, grace time.Duration) error {
	if containerID == "" {
		return errors.New("docker stop: empty container id")
	}
	secs := int(math.Ceil(grace.Seconds()))
	if secs < 0 {
		secs = 0
	}
	_, err := d.cli.ContainerStop(ctx, containerID, client.ContainerStopOptions{Timeout: &secs})
	switch {
	case err == nil:
		return nil
	case cerrdefs.IsNotFound(err):
		return fmt.Errorf("docker stop %s: %w: %w", containerID, stopruntime.ErrGone, err)
	case client.IsErrConnectionFailed(err), cerrdefs.IsUnavailable(err),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("docker stop %s: %w: %w", containerID, stopruntime.ErrTransient, err)
	default:
		return fmt.Errorf("docker stop %s: %w", containerID, err)
	}
}
