package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"

	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/testengine"
	"galaxy/rtmanager/internal/testredis"
)

// engines starts the demo's game engines on one runtime and tells what
// became of them.
type engines interface {
	// rtmanagerArgs are the --runtime (and daemon) flags for rtmanager.
	rtmanagerArgs() []string
	// start runs the engine of game i and returns its container id,
	// endpoint and a line describing it.
	start(ctx context.Context, game string, i int) (id, endpoint, desc string, err error)
	// state says what became of a game's engine after its stop.
	state(game string) string
	close()
}

// processEngines are local processes: this binary run as `rtdemo engine`.
type processEngines struct {
	self string
	cmds map[string]*exec.Cmd
	ids  map[string]string
	drv  *process.Driver
}

func newProcessEngines() (*processEngines, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &processEngines{self: self, cmds: map[string]*exec.Cmd{}, ids: map[string]string{}, drv: process.New(process.Options{})}, nil
}

func (p *processEngines) rtmanagerArgs() []string { return []string{"--runtime", "process"} }

func (p *processEngines) start(_ context.Context, game string, _ int) (string, string, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return "", "", "", err
	}
	e := exec.Command(p.self, "engine", "--game", game, "--addr", addr)
	e.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := e.Start(); err != nil {
		return "", "", "", err
	}
	p.cmds[game] = e
	// Reap the engine when it exits, so it does not linger as a zombie.
	go func() { _ = e.Wait() }()
	id, err := process.IDForPID(e.Process.Pid)
	if err != nil {
		return "", "", "", err
	}
	p.ids[game] = id
	return id, addr, fmt.Sprintf("pid %d, endpoint %s, registered as %s", e.Process.Pid, addr, id), nil
}

func (p *processEngines) state(game string) string {
	alive, err := p.drv.Alive(p.ids[game])
	state := "gone"
	if err != nil {
		state = "unknown: " + err.Error()
	} else if alive {
		state = "STILL RUNNING"
	}
	return fmt.Sprintf("(pid %d): %s", p.cmds[game].Process.Pid, state)
}

func (p *processEngines) close() {
	for _, e := range p.cmds {
		_ = e.Process.Kill()
	}
}

// dockerEngines are containers of the test game-engine image on the real
// container engine that the tests use (internal/testengine: Podman's Docker
// Engine API on a private socket). The last game's engine ignores SIGTERM,
// so its stop ends with the kill after the grace period.
type dockerEngines struct {
	e     *testengine.Engine
	games []string
	cs    map[string]testengine.Container
}

func newDockerEngines(ctx context.Context, gameEngineBinary string, games []string) (*dockerEngines, error) {
	e, err := testengine.New(ctx, testengine.Options{GameEngineBinary: gameEngineBinary})
	if err != nil {
		return nil, err
	}
	return &dockerEngines{e: e, games: games, cs: map[string]testengine.Container{}}, nil
}

func (d *dockerEngines) describe() string {
	return fmt.Sprintf("Podman's Docker API on %s (up in %s; image %s)", d.e.Host(), d.e.StartedIn.Round(time.Millisecond), d.e.Image())
}

func (d *dockerEngines) rtmanagerArgs() []string {
	return []string{"--runtime", "docker", "--docker-host", d.e.Host()}
}

func (d *dockerEngines) start(ctx context.Context, game string, i int) (string, string, string, error) {
	stubborn := i == len(d.games)-1
	c, err := d.e.Run(ctx, testengine.Spec{Game: game, IgnoreTerm: stubborn})
	if err != nil {
		return "", "", "", err
	}
	d.cs[game] = c
	desc := fmt.Sprintf("container %s (%s, label %s=%s), endpoint %s", c.ID[:12], c.Name, testengine.GameLabel, game, c.Addr)
	if stubborn {
		desc += ", ignores SIGTERM"
	}
	return c.ID, c.Addr, desc, nil
}

func (d *dockerEngines) state(game string) string {
	c := d.cs[game]
	st, err := d.e.State(context.Background(), c.ID)
	if err != nil {
		return fmt.Sprintf("(container %s): unknown: %v", c.ID[:12], err)
	}
	if st.Running {
		return fmt.Sprintf("(container %s): STILL RUNNING", c.ID[:12])
	}
	how := "stopped on SIGTERM"
	if st.ExitCode == 137 {
		how = "killed after the grace period"
	}
	return fmt.Sprintf("(container %s): %s, exit code %d (%s)", c.ID[:12], st.Status, st.ExitCode, how)
}

func (d *dockerEngines) close() { _ = d.e.Close() }

func freeAddr() (string, error) { return testredis.FreeAddr() }
