package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	runtimepprof "runtime/pprof"
	"time"
)

// Profiling, off by default. --pprof-addr serves net/http/pprof on a
// listener of its own, never on --http-addr: the console and /metrics may
// be exposed further than the profiles should be. --cpu-profile writes a
// CPU profile of the whole run, start-up to shutdown, which is what a
// benchmark of one burst wants (the /debug/pprof/profile endpoint needs
// the duration up front).

// startPprof serves /debug/pprof/ on addr; nil when addr is empty.
func startPprof(addr string, log *slog.Logger) (*http.Server, error) {
	if addr == "" {
		return nil, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("pprof server stopped", "err", err.Error())
		}
	}()
	log.Info("pprof served", "addr", ln.Addr().String())
	return srv, nil
}

// startCPUProfile profiles the CPU into path until the returned func runs;
// a no-op when path is empty.
func startCPUProfile(path string) (stop func() error, err error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create --cpu-profile file: %w", err)
	}
	if err := runtimepprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("start the CPU profile: %w", err)
	}
	return func() error {
		runtimepprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("write --cpu-profile file: %w", err)
		}
		return nil
	}, nil
}
