package console

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/metrics"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/runtimes/none"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/service"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// BenchmarkDrainWithConsole measures whether a busy console slows jobs: the
// stop pipeline as rtmanager wires it (runtime none) drains a backlog of
// 20,000 stop jobs over 1,000 games, once with no console open and once
// with 10 consoles open, each with a live results stream and reloading the
// overview, jobs, dead-letter and a game page every second. It reports
// jobs/s of each (make bench-console; docs/benchmarks.md).
func BenchmarkDrainWithConsole(b *testing.B) {
	for _, consoles := range []int{0, 10} {
		b.Run(fmt.Sprintf("consoles=%d", consoles), func(b *testing.B) {
			rs := testredis.Start(b)
			rdb := rs.Client()
			defer rdb.Close()
			doc, err := api.Load()
			if err != nil {
				b.Fatal(err)
			}
			var total time.Duration
			jobs := 0
			for b.Loop() {
				d, n := drainOnce(b, rdb, doc, consoles)
				total += d
				jobs += n
			}
			b.ReportMetric(float64(jobs)/total.Seconds(), "jobs/s")
		})
	}
}

func drainOnce(b *testing.B, rdb *redis.Client, doc *api.Document, consoles int) (time.Duration, int) {
	const jobs, games = 20_000, 1_000
	ctx := context.Background()
	b.StopTimer()
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		b.Fatal(err)
	}
	store := runtimestore.New(rdb, runtimestore.Options{})
	for i := 0; i < games; i++ {
		if _, err := store.Register(ctx, stopruntime.Record{GameID: fmt.Sprintf("g-%04d", i), Status: "running", Runtime: "none"}); err != nil {
			b.Fatal(err)
		}
	}
	for from := 0; from < jobs; from += 1000 {
		p := rdb.Pipeline()
		for i := from; i < from+1000; i++ {
			p.XAdd(ctx, &redis.XAddArgs{Stream: runtimejobs.StopJobsChannelPath, Values: []any{"game_id", fmt.Sprintf("g-%04d", i%games), "reason", "game_finished"}})
		}
		if _, err := p.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)

	// The consoles, in the same process as the pipeline (as in rtmanager).
	cctx, stopConsoles := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if consoles > 0 {
		c, err := New(rdb, Options{Contract: doc, Metrics: m.Totals(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		srv := httptest.NewServer(c.Handler())
		defer srv.Close()
		defer c.Close()
		for i := 0; i < consoles; i++ {
			wg.Add(2)
			go func() { defer wg.Done(); follow(cctx, srv.URL+"/jobs/live?after=0-0") }()
			go func() { defer wg.Done(); refresh(cctx, srv.URL) }()
		}
	}

	svc, err := stopruntime.New(store, map[string]stopruntime.Driver{"none": none.Driver{}}, stopruntime.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.StartTimer()
	t0 := time.Now()
	run, err := service.Start(ctx, rdb, service.Options{
		Stopper: svc, Contract: doc, Metrics: m, Logger: slog.New(slog.DiscardHandler),
		Broker: redisstream.Options{Groups: map[string]string{runtimejobs.StopJobsChannelPath: "rtmanager"}, Consumer: "bench", Observer: m},
	})
	if err != nil {
		b.Fatal(err)
	}
	for {
		n, err := rdb.XLen(ctx, runtimejobs.JobResultsChannelPath).Result()
		if err != nil {
			b.Fatal(err)
		}
		if n >= jobs {
			break
		}
		time.Sleep(5 * time.Millisecond) // polling for the end, not an assertion
	}
	d := time.Since(t0)
	b.StopTimer()
	_ = run.Close(ctx)
	stopConsoles()
	wg.Wait()
	b.StartTimer()
	return d, jobs
}

// follow keeps a live results stream open and reads it.
func follow(ctx context.Context, url string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
}

// refresh reloads the main pages once a second, as an open console does.
func refresh(ctx context.Context, base string) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for _, p := range []string{"/", "/jobs", "/dead", "/games/g-0001"} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+p, nil)
			if res, err := http.DefaultClient.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
