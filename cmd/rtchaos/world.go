package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/runtimes/none"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// world is one private redis-server with running games registered.
type world struct {
	srv   *testredis.Server
	rdb   *redis.Client
	url   string // what rtmanager and rtmanagerctl are given
	store *runtimestore.Store
	games []string
}

// newWorld starts redis-server with appendonly yes and appendfsync always
// (plus args) and registers games running games with the runtime none.
func newWorld(ctx context.Context, games int, args []string, user, pass string) (*world, error) {
	srv, err := testredis.New(testredis.Options{AppendOnly: true, Args: args})
	if err != nil {
		return nil, err
	}
	rdb := redis.NewClient(&redis.Options{
		Addr: srv.Addr(), Username: user, Password: pass,
		DialTimeout: time.Second, ReadTimeout: 3 * time.Second, WriteTimeout: 3 * time.Second,
	})
	w := &world{srv: srv, rdb: rdb, url: srv.URL()}
	if user != "" || pass != "" {
		w.url = fmt.Sprintf("redis://%s:%s@%s/0", user, pass, srv.Addr())
	}
	if err := w.register(ctx, games); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *world) register(ctx context.Context, n int) error {
	w.store = runtimestore.New(w.rdb, runtimestore.Options{})
	svc, err := stopruntime.New(w.store,
		map[string]stopruntime.Driver{stopruntime.RuntimeNone: none.Driver{}}, stopruntime.Options{})
	if err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		g := fmt.Sprintf("g-%04d", i)
		if _, err := svc.Register(ctx, stopruntime.Record{GameID: g, Runtime: stopruntime.RuntimeNone, EngineEndpoint: "127.0.0.1:" + strconv.Itoa(7000+i)}); err != nil {
			return fmt.Errorf("register %s: %w", g, err)
		}
		w.games = append(w.games, g)
	}
	return nil
}

func (w *world) close() {
	_ = w.rdb.Close()
	_ = w.srv.Close()
}

func (w *world) resultsLen(ctx context.Context) int64 {
	n, _ := w.rdb.XLen(ctx, resultsStream).Result()
	return n
}

var reasons = []string{"game_finished", "lobby_cancelled", "admin_request", "idle_timeout", "platform_shutdown"}

// validJobs is n stop jobs spread evenly over games, in random order.
func validJobs(n int, games []string, rng *rand.Rand) [][]string {
	out := make([][]string, n)
	now := time.Now().UnixMilli()
	for i := range out {
		out[i] = []string{"game_id", games[i%len(games)], "reason", reasons[rng.IntN(len(reasons))],
			"requested_at_ms", strconv.FormatInt(now+int64(i), 10)}
	}
	rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

type prodStats struct {
	ids     []string // entry ids XADD acknowledged, in the order of entries
	retries int      // XADDs repeated after an error (Redis away)
	took    time.Duration
}

// produce appends entries to the job stream at about rate per second, in
// pipelined batches, as Lobby would. An XADD that fails (Redis away) is
// repeated until it succeeds or timeout passes; one whose reply was lost
// may have been applied, which only makes one more job on the stream.
//
// A close of stop ends it after the current batch (nil: write them all);
// ids of entries never written stay "".
func produce(ctx context.Context, rdb redis.UniversalClient, entries [][]string, rate, batch int, timeout time.Duration, stop <-chan struct{}) (prodStats, error) {
	st := prodStats{ids: make([]string, len(entries))}
	write := func(todo []int) []int {
		pipe := rdb.Pipeline()
		cmds := make([]*redis.StringCmd, len(todo))
		for k, i := range todo {
			cmds[k] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: jobsStream, Values: entries[i]})
		}
		_, _ = pipe.Exec(ctx)
		var again []int
		for k, i := range todo {
			if err := cmds[k].Err(); err != nil {
				again = append(again, i)
				continue
			}
			st.ids[i] = cmds[k].Val()
		}
		st.retries += len(again)
		return again
	}
	var err error
	st.took, err = pace(ctx, len(entries), rate, batch, timeout, stop, write, func() {})
	return st, err
}

// waitConsumerEmpty waits until consumer has nothing pending on any of the
// job streams (its entries were acknowledged or claimed by another
// consumer); it returns the time since from.
func waitConsumerEmpty(ctx context.Context, rdb redis.UniversalClient, jobs []string, consumer string, from time.Time, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		left, err := consumerPending(ctx, rdb, jobs, consumer)
		if err == nil && left == 0 {
			return time.Since(from), nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("consumer %s still has pending entries after %s", consumer, timeout)
}

// consumerPending is what consumer has pending on the job streams.
func consumerPending(ctx context.Context, rdb redis.UniversalClient, jobs []string, consumer string) (int64, error) {
	var left int64
	for _, key := range jobs {
		cs, err := rdb.XInfoConsumers(ctx, key, group).Result()
		if err != nil {
			return 0, fmt.Errorf("consumers of %s: %w", key, err)
		}
		for _, c := range cs {
			if c.Name == consumer {
				left += c.Pending
			}
		}
	}
	return left, nil
}

// catchUp waits until every job on the stream now has its result (each job
// of the fault scenarios has one), and measures the longest time the result
// stream stopped growing meanwhile.
func catchUp(ctx context.Context, w *world, timeout time.Duration) (took, stall time.Duration, err error) {
	t0 := time.Now()
	target, err := w.rdb.XLen(ctx, jobsStream).Result()
	if err != nil {
		return 0, 0, err
	}
	last, lastChange := w.resultsLen(ctx), t0
	for time.Since(t0) < timeout {
		if ctx.Err() != nil {
			return 0, 0, ctx.Err()
		}
		n, err := w.rdb.XLen(ctx, resultsStream).Result()
		if err == nil && n != last {
			stall = max(stall, time.Since(lastChange))
			last, lastChange = n, time.Now()
		}
		if err == nil && n >= target {
			return time.Since(t0), stall, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return 0, max(stall, time.Since(lastChange)), fmt.Errorf("%d of %d jobs answered after %s", last, target, timeout)
}

// waitResults waits until the result stream holds at least n entries.
func waitResults(ctx context.Context, w *world, n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if w.resultsLen(ctx) >= n {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("fewer than %d results after %s", n, timeout)
}

// processedLines counts the "stop job processed" log lines of a process.
func processedLines(p *rtm) int {
	return strings.Count(p.stderr.Text(), `"msg":"stop job processed"`)
}

// durations formats a list of durations.
func durations(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = round(d).String()
	}
	return strings.Join(parts, ", ")
}

func maxDuration(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// msOfID is the millisecond part of a stream entry id.
func msOfID(id string) int64 {
	ms, _, _ := strings.Cut(id, "-")
	n, _ := strconv.ParseInt(ms, 10, 64)
	return n
}
