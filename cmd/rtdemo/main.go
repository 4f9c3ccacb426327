// Command rtdemo is what `make run` runs: a private redis-server, the built
// rtmanager with the process runtime and an engine profile file, three demo
// game engines started by start jobs, and stop jobs sent as Lobby sends them
// (one game twice, one unknown game). It prints each result as it arrives
// and shows the engines are gone, then waits; Ctrl-C stops everything it
// started.
//
// With --runtime docker (`make run RUNTIME=docker`) the engines are
// containers on the real container engine the tests use
// (internal/testengine), and the last one ignores SIGTERM, so its stop ends
// with the kill after the grace period.
//
// `rtdemo engine --game G` is the demo engine itself: it listens on a
// loopback port until it is told to stop.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rtdemo: "+err.Error())
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) > 0 && args[0] == "engine" {
		return engine(ctx, args[1:])
	}
	fs := flag.NewFlagSet("rtdemo", flag.ContinueOnError)
	bin := fs.String("rtmanager", "bin/rtmanager", "the rtmanager binary to start")
	wait := fs.Bool("wait", true, "after the demo, wait for Ctrl-C (false: stop at once)")
	runtime := fs.String("runtime", "process", "runtime of the demo engines: process (local processes) or docker (containers on a private Podman, as the tests use)")
	gameEngine := fs.String("game-engine", "", "for --runtime docker: a static build of internal/testengine/gameengine (default: go build it)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	games := demoGames

	srv, err := testredis.New(testredis.Options{})
	if err != nil {
		return err
	}
	defer srv.Close()
	say("redis-server    private, on %s (data in %s)", srv.Addr(), srv.Dir())
	rdb := srv.Client()
	defer rdb.Close()

	var eng engines
	switch *runtime {
	case "process":
		p, err := newProcessEngines()
		if err != nil {
			return err
		}
		eng = p
	case "docker":
		d, err := newDockerEngines(ctx, *gameEngine, games)
		if err != nil {
			return err
		}
		say("engine          %s", d.about())
		eng = d
	default:
		return fmt.Errorf("unknown --runtime %q: want process or docker", *runtime)
	}
	defer eng.close()

	logPath := filepath.Join(srv.Dir(), "rtmanager.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logFile.Close()
	httpAddr, err := testredis.FreeAddr()
	if err != nil {
		return err
	}
	profilesPath := filepath.Join(srv.Dir(), "engines.yaml")
	if err := os.WriteFile(profilesPath, []byte(eng.profiles()), 0o600); err != nil {
		return err
	}
	rtmArgs := append([]string{"--redis-url", srv.URL(), "--engines", profilesPath}, eng.rtmanagerArgs()...)
	rtm := exec.Command(*bin, append(rtmArgs, "--stop-grace", "3s", "--workers", "4", "--http-addr", httpAddr, "--log-format", "text")...)
	rtm.Stdout, rtm.Stderr = logFile, logFile
	if err := rtm.Start(); err != nil {
		return fmt.Errorf("start rtmanager (run 'make build' first): %w", err)
	}
	rtmDone := make(chan error, 1)
	go func() { rtmDone <- rtm.Wait() }()
	defer func() {
		_ = rtm.Process.Signal(syscall.SIGTERM)
		select {
		case _ = <-rtmDone:
		case <-time.After(10 * time.Second):
			_ = rtm.Process.Kill()
		}
	}()
	if err := waitReady(ctx, "http://"+httpAddr+"/readyz", rtmDone); err != nil {
		return fmt.Errorf("rtmanager did not become ready (log: %s): %w", logPath, err)
	}
	say("rtmanager       pid %d, %s runtime, ready (http://%s/readyz); log in %s", rtm.Process.Pid, *runtime, httpAddr, logPath)

	// Lobby's side: the generated UserController follows the results.
	broker, err := redisstream.New(rdb, redisstream.Options{Block: 200 * time.Millisecond})
	if err != nil {
		return err
	}
	defer func() { _ = broker.Close(context.Background()) }()
	user, err := runtimejobs.NewUserController(broker)
	if err != nil {
		return err
	}
	defer user.Close(context.Background())
	results := make(chan runtimejobs.RuntimeJobResultSchema, 16)
	if err := user.SubscribeToSendJobResultOperation(ctx, func(_ context.Context, m runtimejobs.RuntimeJobResultMessage) error {
		results <- m.Payload
		return nil
	}); err != nil {
		return err
	}

	// Start jobs, as Lobby sends them: rtmanager starts each game's engine
	// from its profile and answers once the engine accepts connections.
	started := map[string]string{}
	for i, g := range games {
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: runtimejobs.StartJobsChannelPath, Values: []string{
			"game_id", g, "engine", eng.profile(i), "requested_at_ms", fmt.Sprint(time.Now().UnixMilli()),
		}}).Result()
		if err != nil {
			return err
		}
		say("start job       %s  game=%s engine=%s", id, g, eng.profile(i))
	}
	for range games {
		select {
		case r := <-results:
			if r.Outcome != "success" {
				return fmt.Errorf("start of game %s: %s %s: %s (log: %s)", r.GameId, r.Outcome, r.ErrorCode, r.ErrorMessage, logPath)
			}
			started[r.GameId] = r.ContainerId
			say("engine          game %s running: %s", r.GameId, eng.describe(r.GameId, r.ContainerId, r.EngineEndpoint))
		case <-time.After(60 * time.Second):
			return fmt.Errorf("no start result within 60s (log: %s)", logPath)
		case <-ctx.Done():
			return nil
		}
	}

	jobs := [][2]string{
		{"demo-1", "game_finished"},
		{"demo-2", "lobby_cancelled"},
		{"demo-3", "idle_timeout"},
		{"demo-1", "game_finished"},
		{"no-such-game", "admin_request"},
	}
	for _, j := range jobs {
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: runtimejobs.StopJobsChannelPath, Values: []string{
			"game_id", j[0], "reason", j[1], "requested_at_ms", fmt.Sprint(time.Now().UnixMilli()),
		}}).Result()
		if err != nil {
			return err
		}
		say("stop job        %s  game=%s reason=%s", id, j[0], j[1])
	}
	for range jobs {
		select {
		case r := <-results:
			code := r.ErrorCode
			if code == "" {
				code = "-"
			}
			say("result          %s  game=%-12s outcome=%-7s error_code=%-12s container=%s", r.JobId, r.GameId, r.Outcome, code, orDash(r.ContainerId))
		case <-time.After(60 * time.Second):
			return fmt.Errorf("no result within 60s (log: %s)", logPath)
		case <-ctx.Done():
			return nil
		}
	}
	for _, g := range games {
		say("engine          game %s %s", g, eng.state(g, started[g]))
	}
	if !*wait {
		return nil
	}
	say("\nrtmanager is still running; try: bin/rtmanagerctl --redis-url %s results", srv.URL())
	if *runtime == "docker" {
		say("Press Ctrl-C to stop rtmanager, redis-server and the container engine (its containers are removed).")
	} else {
		say("Press Ctrl-C to stop rtmanager and redis-server.")
	}
	select {
	case <-ctx.Done():
	case err := <-rtmDone:
		rtmDone <- err
		return fmt.Errorf("rtmanager exited: %v (log: %s)", err, logPath)
	}
	say("\nstopping")
	return nil
}

// demoGames are the games the demo starts and stops.
var demoGames = []string{"demo-1", "demo-2", "demo-3"}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func waitReady(ctx context.Context, url string, done <-chan error) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			return fmt.Errorf("rtmanager exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if resp, err := http.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("timed out")
}

// engine is a stand-in game engine: it serves its endpoint until SIGTERM.
func engine(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("engine", flag.ContinueOnError)
	game := fs.String("game", os.Getenv("RTMANAGER_GAME_ID"), "game id (default: the label rtmanager gives a started engine)")
	addr := fs.String("addr", "127.0.0.1:0", "endpoint to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "galaxy engine for game %s\n", *game)
			_ = c.Close()
		}
	}()
	<-ctx.Done()
	return ln.Close()
}
