// Command gameengine is the stand-in game engine that internal/testengine
// puts in a container image: a static program that serves a TCP port and
// stops on SIGTERM, optionally after a delay or not at all, so tests and the
// demo can watch a real container engine's graceful stop and its kill after
// the grace period.
//
// Flags (each also read from its environment variable):
//
//	--addr ADDR         (ENGINE_ADDR)        listen address, default 127.0.0.1:7000
//	--game ID           (ENGINE_GAME)        game id, told to each connection
//	--term-delay DUR    (ENGINE_TERM_DELAY)  wait this long after SIGTERM before exiting
//	--ignore-term       (ENGINE_IGNORE_TERM) ignore SIGTERM (only SIGKILL ends it)
//	--alloc-mb N        (ENGINE_ALLOC_MB)    after the first connection, take and touch N MiB
//	                                         (with a smaller memory limit: an OOM kill)
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gameengine: "+err.Error())
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("gameengine", flag.ContinueOnError)
	addr := fs.String("addr", envOr("ENGINE_ADDR", "127.0.0.1:7000"), "listen address")
	game := fs.String("game", os.Getenv("ENGINE_GAME"), "game id")
	delay := fs.Duration("term-delay", 0, "wait after SIGTERM before exiting")
	ignore := fs.Bool("ignore-term", false, "ignore SIGTERM")
	allocMB := fs.Int("alloc-mb", 0, "after the first connection, take and touch this many MiB")
	if v := os.Getenv("ENGINE_ALLOC_MB"); v != "" {
		if err := fs.Set("alloc-mb", v); err != nil {
			return fmt.Errorf("ENGINE_ALLOC_MB: %w", err)
		}
	}
	if v := os.Getenv("ENGINE_TERM_DELAY"); v != "" {
		if err := fs.Set("term-delay", v); err != nil {
			return fmt.Errorf("ENGINE_TERM_DELAY: %w", err)
		}
	}
	if v := os.Getenv("ENGINE_IGNORE_TERM"); v != "" {
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("ENGINE_IGNORE_TERM: %w", err)
		}
		_ = fs.Set("ignore-term", v)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}

	// As PID 1 of a container the kernel drops signals without a handler,
	// so SIGTERM is always caught here, and then honoured or ignored.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Printf("gameengine: game %s listening on %s (term-delay %s, ignore-term %t)\n", *game, ln.Addr(), *delay, *ignore)
	first := make(chan struct{})
	go serve(ln, *game, first)
	if *allocMB > 0 {
		go func() {
			<-first
			alloc(*allocMB)
		}()
	}

	for sig := range sigs {
		if *ignore && sig == syscall.SIGTERM {
			fmt.Println("gameengine: SIGTERM ignored")
			continue
		}
		fmt.Printf("gameengine: %s, exiting in %s\n", sig, *delay)
		time.Sleep(*delay)
		return nil
	}
	return nil
}

func serve(ln net.Listener, game string, first chan struct{}) {
	for n := 0; ; n++ {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprintf(c, "galaxy engine for game %s\n", game)
		_ = c.Close()
		if n == 0 {
			close(first)
		}
	}
}

// hog keeps what alloc took reachable.
var hog [][]byte

// alloc takes mb MiB and writes to every page, so the memory is really
// used (an untouched allocation costs nothing).
func alloc(mb int) {
	for i := 0; i < mb; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		hog = append(hog, b)
	}
	fmt.Printf("gameengine: holding %d MiB\n", mb)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
