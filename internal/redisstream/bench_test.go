package redisstream_test

// Benchmarks of the broker against a private redis-server (testredis).
//
//	go test -run '^$' -bench . -benchtime 100000x ./internal/redisstream/
//
// BenchmarkPlainXReadGroupXAck runs first (declaration order) and records its
// rate, so BenchmarkBrokerPipeline can report the ratio to it from the same
// run and the same kind of redis-server. Both report entries/s.

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

// plainRate is the entries/s of the last BenchmarkPlainXReadGroupXAck run.
var plainRate atomic.Uint64

// fillJobs appends n stop jobs over 1000 games, pipelined, untimed.
func fillJobs(b *testing.B, rdb redis.UniversalClient, n int) {
	b.Helper()
	ctx := context.Background()
	const chunk = 1000
	for i := 0; i < n; i += chunk {
		p := rdb.Pipeline()
		for j := i; j < min(n, i+chunk); j++ {
			p.XAdd(ctx, &redis.XAddArgs{Stream: jobs, Values: []string{"game_id", "g" + strconv.Itoa(j%1000), "reason", "game_finished"}})
		}
		if _, err := p.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func benchServer(b *testing.B) (*testredis.Server, *redis.Client) {
	b.Helper()
	srv, err := testredis.New(testredis.Options{})
	if err != nil {
		b.Skip(err)
	}
	b.Cleanup(func() { _ = srv.Close() })
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 64})
	b.Cleanup(func() { _ = rdb.Close() })
	return srv, rdb
}

// BenchmarkPlainXReadGroupXAck is the floor of any consumer group reader:
// XREADGROUP COUNT 128, then one XACK of the batch, in a loop; no handler,
// no publication.
func BenchmarkPlainXReadGroupXAck(b *testing.B) {
	_, rdb := benchServer(b)
	ctx := context.Background()
	fillJobs(b, rdb, b.N)
	if err := rdb.XGroupCreateMkStream(ctx, jobs, group, "0").Err(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	done := 0
	for done < b.N {
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
			Group: group, Consumer: "c1", Streams: []string{jobs, ">"}, Count: 128, Block: time.Second,
		}).Result()
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]string, 0, 128)
		for _, m := range res[0].Messages {
			ids = append(ids, m.ID)
		}
		if err := rdb.XAck(ctx, jobs, group, ids...).Err(); err != nil {
			b.Fatal(err)
		}
		done += len(ids)
	}
	rate := float64(b.N) / time.Since(start).Seconds()
	b.StopTimer()
	plainRate.Store(uint64(rate))
	b.ReportMetric(rate, "entries/s")
}

// BenchmarkBrokerPipeline drains b.N entries through 16 generated
// AppControllers on one Broker with its Middleware; the handler publishes one
// result per entry with the generated SendAsSendJobResultOperation, which
// the broker writes with the entry's XACK in its publish-and-ack script.
func BenchmarkBrokerPipeline(b *testing.B) {
	_, rdb := benchServer(b)
	ctx := context.Background()
	fillJobs(b, rdb, b.N)
	var handled atomic.Int64
	allHandled := make(chan struct{})
	// Throughput settings: a deep prefetch keeps the workers fed while the
	// previous batch's acknowledgements are being written.
	opts := redisstream.Options{Block: 100 * time.Millisecond, Prefetch: 1024, ReadCount: 256, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	br, err := redisstream.New(rdb, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	var ctrls []*runtimejobs.AppController
	for i := 0; i < 16; i++ {
		c, err := runtimejobs.NewAppController(br, runtimejobs.WithMiddlewares(br.Middleware()))
		if err != nil {
			b.Fatal(err)
		}
		h := handlerFunc(func(ctx context.Context, msg runtimejobs.RuntimeStopJobMessage) error {
			err := answer(ctx, c, msg)
			if handled.Add(1) == int64(b.N) {
				close(allHandled)
			}
			return err
		})
		if err := c.SubscribeToAllChannels(ctx, h); err != nil {
			b.Fatal(err)
		}
		ctrls = append(ctrls, c)
	}
	// Done when every entry is acknowledged (its result is written with it):
	// wait for the handlers without touching Redis, then for the last commits.
	<-allHandled
	for {
		p, err := rdb.XPending(ctx, jobs, group).Result()
		if err == nil && p.Count == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_ = br.Close(cctx)
	for _, c := range ctrls {
		c.Close(cctx)
	}
	if n := rdb.XLen(ctx, results).Val(); n != int64(b.N) {
		b.Fatalf("%d results for %d entries", n, b.N)
	}
	rate := float64(b.N) / elapsed.Seconds()
	b.ReportMetric(rate, "entries/s")
	if p := plainRate.Load(); p > 0 {
		b.ReportMetric(rate/float64(p), "x_plain")
	}
}
