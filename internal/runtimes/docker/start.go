package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errhttp"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"galaxy/rtmanager/internal/runtimes"
	"galaxy/rtmanager/internal/stopruntime"
)

// Labels of a container started for a game: a resumed start finds the
// container of its crashed attempt by them, and operators and tests count a
// game's containers with them.
const (
	LabelGameID = "galaxy.rtmanager.game_id"
	LabelJobID  = "galaxy.rtmanager.start_job"
	LabelPort   = "galaxy.rtmanager.host_port"
)

// StartSpec is a container to start for a game (an engine profile).
type StartSpec struct {
	GameID, JobID string
	Image         string
	// Port is the engine's port inside the container; it is published on
	// 127.0.0.1 only, on a free host port.
	Port        int
	Env         map[string]string
	MemoryBytes int64
	CPUs        float64
}

// Started is a container made for a game.
type Started struct {
	ID, JobID, Endpoint string
}

// ContainerName is the name of a game's container for one start job: the
// same job always gets the same name, so a retry after a crash cannot make a
// second one (the create answers a conflict and the existing one is used).
func ContainerName(gameID, jobID string) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' {
				return r
			}
			return '_'
		}, s)
	}
	return "rtm-" + clean(gameID) + "-" + clean(jobID)
}

// Start creates (or, for a job whose container already exists, reuses) and
// starts the game's container and returns it without waiting for the
// engine. The image must be present on the daemon (it is not pulled).
func (d *Driver) Start(ctx context.Context, spec StartSpec) (Started, error) {
	ctx, release, err := d.slots.acquire(ctx)
	if err != nil {
		return Started{}, fmt.Errorf("docker start: %w", err)
	}
	defer release()
	s := d.cur.Load()
	if _, err := d.negotiate(ctx, s, false); err != nil {
		return Started{}, fmt.Errorf("docker start: %w", err)
	}
	name := ContainerName(spec.GameID, spec.JobID)
	id, hostPort, err := d.create(ctx, s.cli, name, spec)
	if err != nil {
		return Started{}, err
	}
	if _, err := s.cli.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil && !cerrdefs.IsNotModified(err) {
		return Started{}, d.classifyOp(s, "start", id, err)
	}
	return Started{ID: id, JobID: spec.JobID, Endpoint: net.JoinHostPort("127.0.0.1", hostPort)}, nil
}

func (d *Driver) create(ctx context.Context, cli *client.Client, name string, spec StartSpec) (id, hostPort string, err error) {
	p, err := runtimes.FreePort()
	if err != nil {
		return "", "", fmt.Errorf("docker start: choose a port: %w", err)
	}
	port := strconv.Itoa(p)
	cport, err := network.ParsePort(strconv.Itoa(spec.Port) + "/tcp")
	if err != nil {
		return "", "", fmt.Errorf("docker start: port %d: %w", spec.Port, err)
	}
	env := make([]string, 0, len(spec.Env))
	for k, v := range spec.Env {
		env = append(env, k+"="+v)
	}
	labels := map[string]string{LabelGameID: spec.GameID, LabelJobID: spec.JobID, LabelPort: port}
	hc := &container.HostConfig{
		PortBindings: network.PortMap{cport: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: port}}},
	}
	hc.Memory = spec.MemoryBytes
	hc.NanoCPUs = int64(spec.CPUs * 1e9)
	res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       name,
		Config:     &container.Config{Image: spec.Image, Env: env, Labels: labels, ExposedPorts: network.PortSet{cport: {}}},
		HostConfig: hc,
	})
	if err == nil {
		return res.ID, port, nil
	}
	// Docker answers 409; Podman 500 with "already in use".
	if !cerrdefs.IsConflict(err) && !strings.Contains(err.Error(), "already in use") {
		return "", "", d.classifyOp(d.cur.Load(), "create", name, err)
	}
	// A crashed attempt of this job made it: use that one.
	in, ierr := cli.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if ierr != nil {
		return "", "", d.classifyOp(d.cur.Load(), "inspect", name, ierr)
	}
	c := in.Container
	if c.Config == nil || c.Config.Labels[LabelGameID] != spec.GameID || c.Config.Labels[LabelJobID] != spec.JobID {
		return "", "", fmt.Errorf("docker start: a container named %s exists and is not this job's", name)
	}
	return c.ID, c.Config.Labels[LabelPort], nil
}

// Find lists the containers (any state) labelled with the game.
func (d *Driver) Find(ctx context.Context, gameID string) ([]Started, error) {
	ctx, release, err := d.slots.acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("docker find: %w", err)
	}
	defer release()
	s := d.cur.Load()
	if _, err := d.negotiate(ctx, s, false); err != nil {
		return nil, fmt.Errorf("docker find: %w", err)
	}
	list, err := s.cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: client.Filters{}.Add("label", LabelGameID+"="+gameID)})
	if err != nil {
		return nil, d.classifyOp(s, "list", gameID, err)
	}
	out := make([]Started, 0, len(list.Items))
	for _, c := range list.Items {
		if c.Labels[LabelGameID] != gameID {
			continue
		}
		out = append(out, Started{ID: c.ID, JobID: c.Labels[LabelJobID], Endpoint: net.JoinHostPort("127.0.0.1", c.Labels[LabelPort])})
	}
	return out, nil
}

// Remove kills and removes a container; one already gone is no error.
func (d *Driver) Remove(ctx context.Context, id string) error {
	ctx, release, err := d.slots.acquire(ctx)
	if err != nil {
		return fmt.Errorf("docker remove %s: %w", id, err)
	}
	defer release()
	s := d.cur.Load()
	if _, err := d.negotiate(ctx, s, false); err != nil {
		return fmt.Errorf("docker remove %s: %w", id, err)
	}
	_, _ = s.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"})
	_, err = s.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	return d.classifyOp(s, "remove", id, err)
}

// classifyOp names the operation; transient answers (the daemon
// unreachable, the deadline, 429/502/503/504) wrap stopruntime.ErrTransient.
func (d *Driver) classifyOp(_ *session, op, what string, err error) error {
	transient := client.IsErrConnectionFailed(err) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
	for _, code := range tryAgain {
		transient = transient || errors.Is(err, errhttp.ToNative(code))
	}
	if transient {
		return fmt.Errorf("docker %s %s: %w: %w", op, what, stopruntime.ErrTransient, err)
	}
	return fmt.Errorf("docker %s %s: %w", op, what, err)
}
