package runtimestore

import (
	"context"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// evalshaCalls is how many EVALSHA calls the server has run.
func evalshaCalls(t *testing.T, c *redis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	for _, line := range strings.Split(info, "\r\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_evalsha:calls="); ok {
			n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			require.NoError(t, err)
			return n
		}
	}
	return 0
}

// runQueued sends calls queued together as one batch, the way they leave
// when they arrive while a pipeline is on the wire.
func runQueued(b *batcher, calls ...*call) {
	b.mu.Lock()
	for _, c := range calls {
		c.done = make(chan struct{}, 1)
		b.queue = append(b.queue, c)
	}
	b.running = true
	b.mu.Unlock()
	b.loop()
}

func TestBatchMergesScriptCallsAndIsolatesFailures(t *testing.T) {
	ctx := context.Background()
	c := testredis.Start(t).Client()
	s := New(c, Options{})
	require.NoError(t, s.Preload(ctx))
	for _, g := range []string{"g1", "g2", "g3"} {
		_, err := s.Register(ctx, stopruntime.Record{GameID: g, Status: "running", ContainerID: "c-" + g, Runtime: "none", UpdatedAtMS: 1})
		require.NoError(t, err)
	}
	// A record key holding a string: HMGET fails for it alone.
	require.NoError(t, c.Set(ctx, s.RecordKey("bad"), "x", 0).Err())
	require.NoError(t, c.ConfigResetStat(ctx).Err())

	begin := func(g string) *call {
		return &call{script: s.begin, key: s.RecordKey(g), args: []any{"1-" + g, 100, 1000}}
	}
	calls := []*call{begin("g1"), begin("bad"), begin("g2"), begin("missing"), begin("g3")}
	logged := s.appendCall(stopruntime.Operation{GameID: "g9", Operation: "stop"})
	runQueued(s.batch, append(calls, logged)...)

	assert.Equal(t, 1, evalshaCalls(t, c), "five begins, one script call")
	for i, g := range []string{"g1", "g2", "g3"} {
		v, err := calls[[]int{0, 2, 4}[i]].value()
		require.NoError(t, err, g)
		verdict, rec, _, err := parseFields(g, v, true)
		require.NoError(t, err)
		assert.Equal(t, "started", verdict, g)
		assert.Equal(t, "c-"+g, rec.ContainerID, g)
		assert.Equal(t, "1-"+g, rec.StoppingJobID, g)
	}
	_, err := calls[1].value()
	require.ErrorContains(t, err, "WRONGTYPE")
	v, err := calls[3].value()
	require.NoError(t, err)
	assert.Equal(t, "9:not_found", v)
	require.NoError(t, logged.logCmd.Err())
	n, err := c.XLen(ctx, s.OperationsKey()).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)

	// After a script-cache flush the merged call falls back to EVAL.
	require.NoError(t, c.ScriptFlush(ctx).Err())
	fin := func(g string) *call {
		return &call{script: s.finish, key: s.RecordKey(g), args: []any{"1-" + g, 200, "stopped", `{"outcome":"success"}`}}
	}
	calls = []*call{fin("g1"), fin("g2")}
	runQueued(s.batch, calls...)
	for i, g := range []string{"g1", "g2"} {
		v, err := calls[i].value()
		require.NoError(t, err, g)
		assert.Equal(t, int64(1), v, g)
		rec, ok, err := s.Get(ctx, g)
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, "stopped", rec.Status)
	}
}

func TestBatchKeepsOneScriptCallPerRecordWithoutMerge(t *testing.T) {
	ctx := context.Background()
	c := testredis.Start(t).Client()
	s := New(c, Options{})
	s.batch.merge = false // what a Cluster client gets
	require.NoError(t, s.Preload(ctx))
	require.NoError(t, c.ConfigResetStat(ctx).Err())
	calls := []*call{
		{script: s.begin, key: s.RecordKey("a"), args: []any{"1-0", 1, 1}},
		{script: s.begin, key: s.RecordKey("b"), args: []any{"1-0", 1, 1}},
	}
	runQueued(s.batch, calls...)
	assert.Equal(t, 2, evalshaCalls(t, c))
	for _, cl := range calls {
		v, err := cl.value()
		require.NoError(t, err)
		assert.Equal(t, "9:not_found", v)
	}
}

// TestCallersAlreadyRunnableLeaveTogether: callers woken together (the
// workers a read hands its entries to) reach the batcher one after the
// other; the first starts the pipeline loop, which lets the others queue
// before it sends, so they leave as one script call rather than the first
// alone and the rest after its round trip. With one P the order is the
// scheduler's, not timing's; the race detector shuffles it, and the
// scheduler now and then looks at its global queue first, so the bound is
// on many rounds.
func TestCallersAlreadyRunnableLeaveTogether(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	ctx := context.Background()
	c := testredis.Start(t).Client()
	s := New(c, Options{})
	require.NoError(t, s.Preload(ctx))
	const rounds, callers = 50, 8
	for i := 0; i < rounds*callers; i++ {
		_, err := s.Register(ctx, stopruntime.Record{GameID: "g" + strconv.Itoa(i), Status: "running", Runtime: "none", UpdatedAtMS: 1})
		require.NoError(t, err)
	}
	require.NoError(t, c.ConfigResetStat(ctx).Err())
	for r := 0; r < rounds; r++ {
		start := make(chan struct{})
		var wg sync.WaitGroup
		var parked atomic.Int32
		for i := 0; i < callers; i++ {
			g := "g" + strconv.Itoa(r*callers+i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				parked.Add(1)
				<-start
				b, err := s.BeginStop(ctx, stopruntime.BeginRequest{GameID: g, JobID: "1-" + g, NowMS: 10, TakeoverMS: 1000})
				assert.NoError(t, err)
				assert.Equal(t, stopruntime.BeginStarted, b.Verdict, g)
			}()
		}
		for parked.Load() < callers {
			runtime.Gosched()
		}
		runtime.Gosched() // the last one from parked.Add to <-start
		close(start)
		wg.Wait()
	}
	calls := evalshaCalls(t, c)
	t.Logf("%d begin script calls for %d rounds of %d callers", calls, rounds, callers)
	assert.LessOrEqual(t, calls, rounds*13/10, "most rounds leave in one script call (the first caller alone, then the rest, is two a round)")
}
