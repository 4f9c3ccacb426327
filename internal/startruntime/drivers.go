package startruntime

import (
	"context"
	"errors"
	"time"

	"galaxy/rtmanager/internal/engines"
	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/stopruntime"
)

// Process starts process profiles with the process runtime driver.
type Process struct {
	D *process.Driver
	// Grace is the SIGTERM grace when a runtime is removed. Default 5s.
	Grace time.Duration
}

var _ Driver = Process{}

// RuntimeName implements Driver.
func (Process) RuntimeName() string { return stopruntime.RuntimeProcess }

// Start implements Driver.
func (p Process) Start(ctx context.Context, spec Spec) (Runtime, error) {
	if spec.Profile.Runtime != engines.RuntimeProcess {
		return Runtime{}, errors.New("process runtime: profile is not a process profile")
	}
	id, ep, err := p.D.Start(ctx, process.StartSpec{GameID: spec.GameID, JobID: spec.JobID,
		Command: spec.Profile.Command, Env: spec.Profile.Env})
	if err != nil {
		return Runtime{}, err
	}
	return Runtime{ContainerID: id, JobID: spec.JobID, Endpoint: ep}, nil
}

// Find implements Driver: live processes labelled with the game.
func (p Process) Find(ctx context.Context, gameID string) ([]Runtime, error) {
	found, err := p.D.Find(gameID, "")
	if err != nil {
		return nil, err
	}
	out := make([]Runtime, 0, len(found))
	for _, f := range found {
		out = append(out, Runtime{ContainerID: f.ContainerID, JobID: f.JobID, Endpoint: f.Endpoint})
	}
	return out, nil
}

// Remove implements Driver: SIGTERM to the group, SIGKILL after Grace.
func (p Process) Remove(ctx context.Context, containerID string) error {
	grace := p.Grace
	if grace <= 0 {
		grace = 5 * time.Second
	}
	if err := p.D.Stop(ctx, containerID, grace); err != nil && !errors.Is(err, stopruntime.ErrGone) {
		return err
	}
	return nil
}

// None records starts without running anything: a fake container id and
// endpoint, never probed. For dry runs, demos and benchmarks.
type None struct{}

var _ Driver = None{}

// RuntimeName implements Driver.
func (None) RuntimeName() string { return stopruntime.RuntimeNone }

// Start implements Driver.
func (None) Start(ctx context.Context, spec Spec) (Runtime, error) {
	return Runtime{ContainerID: "none:" + spec.JobID, JobID: spec.JobID, Endpoint: "none.invalid:0", NoProbe: true}, nil
}

// Find implements Driver: nothing runs.
func (None) Find(context.Context, string) ([]Runtime, error) { return nil, nil }

// Remove implements Driver.
func (None) Remove(context.Context, string) error { return nil }

// Docker starts docker profiles as containers published on 127.0.0.1.
type Docker struct{ D *docker.Driver }

var _ Driver = Docker{}

// RuntimeName implements Driver.
func (Docker) RuntimeName() string { return stopruntime.RuntimeDocker }

// Start implements Driver.
func (d Docker) Start(ctx context.Context, spec Spec) (Runtime, error) {
	p := spec.Profile
	if p.Runtime != engines.RuntimeDocker {
		return Runtime{}, errors.New("docker runtime: profile is not a docker profile")
	}
	st, err := d.D.Start(ctx, docker.StartSpec{GameID: spec.GameID, JobID: spec.JobID, Image: p.Image, Port: p.Port,
		Env: p.Env, MemoryBytes: p.MemoryBytes, CPUs: p.CPUs})
	if err != nil {
		return Runtime{}, err
	}
	return Runtime{ContainerID: st.ID, JobID: st.JobID, Endpoint: st.Endpoint}, nil
}

// Find implements Driver: containers labelled with the game, any state.
func (d Docker) Find(ctx context.Context, gameID string) ([]Runtime, error) {
	found, err := d.D.Find(ctx, gameID)
	if err != nil {
		return nil, err
	}
	out := make([]Runtime, 0, len(found))
	for _, f := range found {
		out = append(out, Runtime{ContainerID: f.ID, JobID: f.JobID, Endpoint: f.Endpoint})
	}
	return out, nil
}

// Remove implements Driver.
func (d Docker) Remove(ctx context.Context, id string) error { return d.D.Remove(ctx, id) }
