package testengine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Spec describes a test game-engine container.
type Spec struct {
	// Game is the game id: label GameLabel and the engine's --game.
	Game string
	// Name is the container name; default "rtm-<game>-<port>".
	Name string
	// TermDelay is how long the engine takes to exit after SIGTERM.
	TermDelay time.Duration
	// IgnoreTerm makes the engine ignore SIGTERM: only the kill after the
	// grace period ends it.
	IgnoreTerm bool
	// RestartAlways sets restart policy "always".
	RestartAlways bool
	// NoStart only creates the container.
	NoStart bool
	// Memory limits the container's memory (bytes, no swap); AllocMB makes
	// the engine take that many MiB after its first connection (more than
	// Memory: the kernel kills it for lack of memory).
	Memory  int64
	AllocMB int
}

// Container is a test game-engine container.
type Container struct {
	ID, Name, Game string
	// Addr is the engine's endpoint, 127.0.0.1:<port> on the host network.
	Addr string
}

// Run creates and starts a container and waits until the engine accepts
// connections (so its SIGTERM handling is in place).
func (e *Engine) Run(ctx context.Context, spec Spec) (Container, error) {
	addr, err := freeAddr()
	if err != nil {
		return Container{}, err
	}
	c := Container{Name: spec.Name, Game: spec.Game, Addr: addr}
	if c.Name == "" {
		_, port, _ := net.SplitHostPort(addr)
		c.Name = "rtm-" + spec.Game + "-" + port
	}
	cmd := []string{"--addr", addr, "--game", spec.Game, "--term-delay", spec.TermDelay.String(), "--ignore-term=" + strconv.FormatBool(spec.IgnoreTerm),
		"--alloc-mb", strconv.Itoa(spec.AllocMB)}
	hc := &container.HostConfig{NetworkMode: "host"}
	if spec.Memory > 0 {
		hc.Memory, hc.MemorySwap = spec.Memory, spec.Memory
	}
	if spec.RestartAlways {
		hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyAlways}
	}
	res, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       c.Name,
		Config:     &container.Config{Image: e.image, Cmd: cmd, Labels: map[string]string{Label: e.owner, GameLabel: spec.Game}},
		HostConfig: hc,
	})
	if err != nil {
		return c, fmt.Errorf("testengine: create container %s: %w", c.Name, err)
	}
	c.ID = res.ID
	if spec.NoStart {
		return c, nil
	}
	if _, err := e.cli.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		return c, fmt.Errorf("testengine: start container %s: %w", c.Name, err)
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = conn.Close()
			return c, nil
		}
		if time.Now().After(deadline) {
			return c, fmt.Errorf("testengine: container %s never listened on %s: %w", c.Name, addr, err)
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// MustRun is Run for a test: it fails the test on error and removes the
// container when the test ends.
func (e *Engine) MustRun(tb TB, spec Spec) Container {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := e.Run(ctx, spec)
	if c.ID != "" {
		tb.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_ = e.Remove(ctx, c.ID)
		})
	}
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

// State is a container's state; a removed container is an error for which
// IsNotFound is true.
func (e *Engine) State(ctx context.Context, id string) (container.State, error) {
	res, err := e.cli.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return container.State{}, err
	}
	if res.Container.State == nil {
		return container.State{}, errors.New("testengine: inspect without state")
	}
	return *res.Container.State, nil
}

// Pause freezes a container.
func (e *Engine) Pause(ctx context.Context, id string) error {
	_, err := e.cli.ContainerPause(ctx, id, client.ContainerPauseOptions{})
	return err
}

// Remove removes a container, running or not. It is killed first: a forced
// remove would give a SIGTERM-ignoring engine its full stop timeout.
func (e *Engine) Remove(ctx context.Context, id string) error {
	_, _ = e.cli.ContainerKill(ctx, id, client.ContainerKillOptions{Signal: "KILL"})
	_, err := e.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	return err
}

// RemoveAll removes every container this process made.
func (e *Engine) RemoveAll(ctx context.Context) error {
	list, err := e.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: client.Filters{}.Add("label", Label+"="+e.owner)})
	if err != nil {
		return fmt.Errorf("testengine: list containers: %w", err)
	}
	var errs []error
	for _, c := range list.Items {
		if err := e.Remove(ctx, c.ID); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
