package console

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/testredis"
)

// BenchmarkPages measures every page against a loaded Redis: 100,000 stop
// jobs pending with 4 consumers, 10,000 dead letters, 100,000 results and
// operation-log entries, 10,000 games. Run it with `make bench-console`;
// each page must answer in under 200 ms (docs/benchmarks.md). It reports
// the mean (ns/op) and the slowest request (max-ms).
func BenchmarkPages(b *testing.B) {
	ctx := context.Background()
	rs := testredis.Start(b)
	rdb := rs.Client()
	defer rdb.Close()
	doc, err := api.Load()
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(rdb, Options{Contract: doc, Token: "t"})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler())
	defer srv.Close()
	deadID, jobID := loadRedis(b, ctx, rdb, c.keys)

	pages := []struct{ name, path string }{
		{"overview", "/"}, {"jobs", "/jobs"}, {"jobs-filtered", "/jobs?outcome=failure&code=stop_failed"},
		{"job-timeline", "/jobs?q=" + jobID}, {"games", "/games"}, {"games-failed", "/games?status=failed"},
		{"game", "/games/g-00042"}, {"dead", "/dead"}, {"dead-older", "/dead?before=" + deadID},
	}
	for _, pg := range pages {
		p := pg.path
		b.Run(pg.name, func(b *testing.B) {
			var slowest time.Duration
			for b.Loop() {
				t0 := time.Now()
				res, err := http.Get(srv.URL + p)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Fatalf("%s: status %d", p, res.StatusCode)
				}
				slowest = max(slowest, time.Since(t0))
			}
			b.ReportMetric(float64(slowest.Microseconds())/1000, "max-ms")
		})
	}
}

// loadRedis fills Redis; it returns a dead letter's id in the middle of the
// dead stream and a pending job's id.
func loadRedis(b *testing.B, ctx context.Context, rdb *redis.Client, k keys) (string, string) {
	b.Helper()
	const jobs, dead, games = 100_000, 10_000, 10_000
	batch := func(n int, add func(p redis.Pipeliner, i int)) {
		for from := 0; from < n; from += 1000 {
			p := rdb.Pipeline()
			for i := from; i < min(n, from+1000); i++ {
				add(p, i)
			}
			if _, err := p.Exec(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	batch(jobs, func(p redis.Pipeliner, i int) {
		g := fmt.Sprintf("g-%05d", i%games)
		p.XAdd(ctx, &redis.XAddArgs{Stream: runtimejobs.StopJobsChannelPath, Values: []any{"game_id", g, "reason", "admin_request", "requested_at_ms", "1764160000000"}})
		p.XAdd(ctx, &redis.XAddArgs{Stream: runtimejobs.JobResultsChannelPath, Values: []any{
			"job_id", fmt.Sprintf("1764160000000-%d", i), "game_id", g, "operation", "stop", "outcome", "success", "error_code", "",
			"error_message", "", "container_id", "c", "engine_endpoint", "127.0.0.1:7000", "completed_at_ms", "1764160000420"}})
		p.XAdd(ctx, &redis.XAddArgs{Stream: k.operations, Values: []any{
			"game_id", g, "operation", "stop", "source", "lobby_stream", "source_ref", fmt.Sprintf("1764160000000-%d", i),
			"reason", "admin_request", "outcome", "success", "error_code", "", "error_message", "", "container_id", "c",
			"started_at_ms", "1764160000000", "finished_at_ms", "1764160000420"}})
	})
	if err := rdb.XGroupCreate(ctx, runtimejobs.StopJobsChannelPath, "rtmanager", "0").Err(); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 4; i++ {
		if err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "rtmanager", Consumer: fmt.Sprintf("rtmanager-%d", i),
			Streams: []string{runtimejobs.StopJobsChannelPath, ">"}, Count: jobs / 4}).Err(); err != nil {
			b.Fatal(err)
		}
	}
	var deadIDs []string
	batch(dead, func(p redis.Pipeliner, i int) {
		p.XAdd(ctx, &redis.XAddArgs{Stream: runtimejobs.StopJobsDeadChannelPath, ID: fmt.Sprintf("1764170000000-%d", i), Values: []any{
			"dead_reason", "invalid", "dead_error", "reason: not one of the contract's values", "original_id", fmt.Sprintf("1764160000000-%d", i),
			"delivery_count", "1", "dead_at_ms", "1764170000000", "game_id", fmt.Sprintf("g-%05d", i), "reason", "bogus"}})
		if i == dead/2 {
			deadIDs = append(deadIDs, fmt.Sprintf("1764170000000-%d", i))
		}
	})
	statuses := []string{"running", "stopped", "failed"}
	batch(games, func(p redis.Pipeliner, i int) {
		p.HSet(ctx, k.record(fmt.Sprintf("g-%05d", i)), "status", statuses[i%3], "runtime", "none", "container_id", "c",
			"engine_endpoint", "127.0.0.1:7000", "updated_at_ms", "1764160000420",
			"last_job_id", "1764160000000-0", "last_result", `{"outcome":"success","error_code":"","error_message":"","container_id":"c","engine_endpoint":"127.0.0.1:7000"}`)
	})
	pend, err := rdb.XPending(ctx, runtimejobs.StopJobsChannelPath, "rtmanager").Result()
	if err != nil || pend.Count != jobs {
		b.Fatalf("pending: %v %v", pend, err)
	}
	return deadIDs[0], pend.Lower
}
