package runtimewatch

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/runtimes"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/testredis"
)

// alwaysRunning is an Inspector for which every runtime runs.
type alwaysRunning struct{}

func (alwaysRunning) Inspect(context.Context, string) (runtimes.State, error) {
	return runtimes.State{Running: true}, nil
}

// benchWatcher watches n running games whose engines all listen on one
// local listener; it is not started (the benchmark drives its rounds).
func benchWatcher(b *testing.B, n int) *Watcher {
	b.Helper()
	srv := testredis.Start(b)
	rdb := srv.Client()
	b.Cleanup(func() { _ = rdb.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	ctx := context.Background()
	_, err = rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range n {
			p.HSet(ctx, "rtmanager:runtime:{g"+strconv.Itoa(i)+"}", "status", "running", "container_id", "c"+strconv.Itoa(i),
				"engine_endpoint", ln.Addr().String(), "runtime", "process")
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	doc, err := api.Load()
	if err != nil {
		b.Fatal(err)
	}
	ch, _ := doc.ChannelByAddress("runtime:events")
	w, err := New(runtimestore.New(rdb, runtimestore.Options{}), Options{Drivers: map[string]Inspector{"process": alwaysRunning{}}, Events: ch})
	if err != nil {
		b.Fatal(err)
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	b.Cleanup(w.cancel)
	return w
}

// One reconciliation of 10,000 running records (list, inspect each with a
// driver that answers at once): the cost the watch adds per interval.
func BenchmarkReconcile10k(b *testing.B) {
	w := benchWatcher(b, 10000)
	b.ResetTimer()
	for b.Loop() {
		w.reconcile()
	}
	if len(w.watched()) != 10000 {
		b.Fatalf("watched %d games", len(w.watched()))
	}
}

// One health-check round over 10,000 engines (TCP connects to a local
// listener, DefaultProbeConcurrency at a time).
func BenchmarkProbeRound10k(b *testing.B) {
	w := benchWatcher(b, 10000)
	w.reconcile()
	b.ResetTimer()
	for b.Loop() {
		w.probeRound()
	}
}
