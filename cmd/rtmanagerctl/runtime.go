package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"

	"galaxy/rtmanager/internal/runtimes/process"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
)

// newService is the runtime service on d's records: in a sharded layout a
// game's record is in its shard (rtmanager:{rt-N}:runtime:<game>).
func newService(d *deployment) (*stopruntime.Service, error) {
	svc, err := stopruntime.New(runtimestore.New(d.c, runtimestore.Options{Layout: d.layout}), nil,
		stopruntime.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, fmt.Errorf("build runtime service: %w", err)
	}
	return svc, nil
}

func cmdRegister(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("register", flag.ContinueOnError)
	container := fs.String("container", "", "container id (docker), or process id pid:<pid>:start:<ticks>; optional with --pid")
	endpoint := fs.String("endpoint", "", "the game engine's HOST:PORT")
	runtimeName := fs.String("runtime", "", "docker, process or none")
	pid := fs.Int("pid", 0, "process runtime: compute the container id of this live process")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("register", pos, 1, "one GAME"); err != nil {
		return err
	}
	game := strings.TrimSpace(pos[0])
	if err := stopruntime.ValidateGameID(game); err != nil {
		return usagef("register: %v", err)
	}
	switch *runtimeName {
	case stopruntime.RuntimeDocker, stopruntime.RuntimeProcess, stopruntime.RuntimeNone:
	case "":
		return usagef("register: --runtime is required (docker, process or none)")
	default:
		return usagef("register: --runtime %q: must be docker, process or none", *runtimeName)
	}
	if err := checkEndpoint(*endpoint); err != nil {
		return usagef("register: --endpoint %q: %v", *endpoint, err)
	}
	id := *container
	if visited(fs)["pid"] {
		if *runtimeName != stopruntime.RuntimeProcess {
			return usagef("register: --pid needs --runtime process")
		}
		if *pid <= 0 {
			return usagef("register: --pid %d: must be positive", *pid)
		}
		pidID, err := process.IDForPID(*pid)
		if err != nil {
			return fmt.Errorf("register: %w", err)
		}
		if id != "" && id != pidID {
			return usagef("register: --container %q is not the id of --pid %d (%s)", id, *pid, pidID)
		}
		id = pidID
	}
	if *runtimeName == stopruntime.RuntimeProcess && id != "" {
		if _, _, err := process.ParseID(id); err != nil {
			return usagef("register: --container %q: %v", id, err)
		}
	}
	if id == "" && *runtimeName != stopruntime.RuntimeNone {
		return usagef("register: --container (or, for process, --pid) is required for runtime %s", *runtimeName)
	}

	d, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	svc, err := newService(d)
	if err != nil {
		return err
	}
	rec, err := svc.Register(ctx, stopruntime.Record{
		GameID: game, ContainerID: id, EngineEndpoint: *endpoint, Runtime: *runtimeName,
	})
	if err != nil {
		if errors.Is(err, stopruntime.ErrBusy) {
			return fmt.Errorf("%w; try again when the stop has finished", err)
		}
		return err
	}
	return a.printRecord(rec)
}

func checkEndpoint(ep string) error {
	if ep == "" {
		return errors.New("required")
	}
	host, port, err := net.SplitHostPort(ep)
	if err != nil {
		return errors.New("must be HOST:PORT")
	}
	if host == "" {
		return errors.New("empty host")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("port must be 1-65535")
	}
	return nil
}

func cmdStatus(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("status", pos, 1, "one GAME"); err != nil {
		return err
	}
	game := strings.TrimSpace(pos[0])
	if err := stopruntime.ValidateGameID(game); err != nil {
		return usagef("status: %v", err)
	}
	d, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	svc, err := newService(d)
	if err != nil {
		return err
	}
	rec, ok, err := svc.Get(ctx, game)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no runtime record for game %s (register one with '%s register')", game, prog)
	}
	return a.printRecord(rec)
}
