package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/testengine"
)

// engines are the demo's engine profiles on one runtime; rtmanager starts
// them from start jobs and tells what became of them.
type engines interface {
	// rtmanagerArgs are the --runtime (and daemon) flags for rtmanager.
	rtmanagerArgs() []string
	// profiles is the --engines file.
	profiles() string
	// profile is the profile game i is started with.
	profile(i int) string
	// describe says what runs for a started game.
	describe(game, containerID, endpoint string) string
	// state says what became of a game's engine after its stop.
	state(game, containerID string) string
	close()
}

// processEngines are local processes: this binary run as `rtdemo engine`.
type processEngines struct {
	self string
	drv  *process.Driver
}

func newProcessEngines() (*processEngines, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &processEngines{self: self, drv: process.New(process.Options{})}, nil
}

func (p *processEngines) rtmanagerArgs() []string { return []string{"--runtime", "process"} }

func (p *processEngines) profiles() string {
	return fmt.Sprintf("engines:\n  demo:\n    runtime: process\n    command: [%q, engine, --addr, \"127.0.0.1:{port}\"]\n", p.self)
}

func (p *processEngines) profile(int) string { return "demo" }

func (p *processEngines) describe(_, id, endpoint string) string {
	pid, _, _ := process.ParseID(id)
	return fmt.Sprintf("pid %d, endpoint %s, started as %s", pid, endpoint, id)
}

func (p *processEngines) state(_, id string) string {
	pid, _, _ := process.ParseID(id)
	alive, err := p.drv.Alive(id)
	state := "gone"
	if err != nil {
		state = "unknown: " + err.Error()
	} else if alive {
		state = "STILL RUNNING"
	}
	return fmt.Sprintf("(pid %d): %s", pid, state)
}

// close kills what is left of the demo's engines (rtmanager stopped them).
func (p *processEngines) close() {
	for _, g := range demoGames {
		found, _ := p.drv.Find(g, "")
		for _, f := range found {
			_ = p.drv.Stop(context.Background(), f.ContainerID, time.Second)
		}
	}
}

// dockerEngines are containers of the test game-engine image on the real
// container engine that the tests use (internal/testengine: Podman's Docker
// Engine API on a private socket). The last game's profile ignores
// SIGTERM, so its stop ends with the kill after the grace period.
type dockerEngines struct {
	e     *testengine.Engine
	games []string
}

func newDockerEngines(ctx context.Context, gameEngineBinary string, games []string) (*dockerEngines, error) {
	e, err := testengine.New(ctx, testengine.Options{GameEngineBinary: gameEngineBinary})
	if err != nil {
		return nil, err
	}
	return &dockerEngines{e: e, games: games}, nil
}

func (d *dockerEngines) about() string {
	return fmt.Sprintf("Podman's Docker API on %s (up in %s; image %s)", d.e.Host(), d.e.StartedIn.Round(time.Millisecond), d.e.Image())
}

func (d *dockerEngines) rtmanagerArgs() []string {
	return []string{"--runtime", "docker", "--docker-host", d.e.Host()}
}

func (d *dockerEngines) profiles() string {
	return fmt.Sprintf(`engines:
  demo:
    runtime: docker
    image: %q
    port: 7000
    env: {ENGINE_ADDR: "0.0.0.0:7000"}
  stubborn:
    runtime: docker
    image: %q
    port: 7000
    env: {ENGINE_ADDR: "0.0.0.0:7000", ENGINE_IGNORE_TERM: "true"}
`, d.e.Image(), d.e.Image())
}

func (d *dockerEngines) profile(i int) string {
	if i == len(d.games)-1 {
		return "stubborn"
	}
	return "demo"
}

func (d *dockerEngines) describe(game, id, endpoint string) string {
	res, err := d.e.Client().ContainerInspect(context.Background(), id, client.ContainerInspectOptions{})
	name := "?"
	if err == nil {
		name = strings.TrimPrefix(res.Container.Name, "/")
	}
	return fmt.Sprintf("container %s (%s, label %s=%s), endpoint %s", short(id), name, docker.LabelGameID, game, endpoint)
}

func (d *dockerEngines) state(_, id string) string {
	st, err := d.e.State(context.Background(), id)
	if err != nil {
		return fmt.Sprintf("(container %s): unknown: %v", short(id), err)
	}
	if st.Running {
		return fmt.Sprintf("(container %s): STILL RUNNING", short(id))
	}
	how := "stopped on SIGTERM"
	if st.ExitCode == 137 {
		how = "killed after the grace period"
	}
	return fmt.Sprintf("(container %s): %s, exit code %d (%s)", short(id), st.Status, st.ExitCode, how)
}

// close removes the containers rtmanager made for the demo's games, then
// stops the engine.
func (d *dockerEngines) close() {
	drv, err := docker.New(docker.Options{Host: d.e.Host()})
	if err == nil {
		for _, g := range d.games {
			found, _ := drv.Find(context.Background(), g)
			for _, f := range found {
				_ = drv.Remove(context.Background(), f.ID)
			}
		}
		_ = drv.Close()
	}
	_ = d.e.Close()
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
