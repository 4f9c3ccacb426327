package runtimestore_test

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
)

// The stop path's heap allocations are most of its client CPU (the
// collector's share with them): a stop's begin and finish, a lone caller
// on a real Redis, stay within a budget: what the store needs now (60 in
// both layouts; up to 63 under -race) plus a margin of one. Each of these
// went over it (unsharded): array replies (go-redis allocates each string
// twice; 111), arguments boxed by value (a string or an int64 in an `any`
// allocates; 88), calls not recycled (66), the result encoded by
// json.Marshal (62).
func TestStopAllocationBudget(t *testing.T) {
	for name, tc := range map[string]struct {
		opts   func(t *testing.T) runtimestore.Options
		budget float64 // allocations per begin + finish, whole process (the test's own included)
	}{
		"unsharded": {func(*testing.T) runtimestore.Options { return runtimestore.Options{} }, 61},
		// 67 while the logged script answered with the entry's id and
		// each call built its log key.
		"sharded": {func(t *testing.T) runtimestore.Options { return runtimestore.Options{Layout: layout(t, 16)} }, 61},
	} {
		t.Run(name, func(t *testing.T) {
			got := stopAllocations(t, tc.opts(t))
			t.Logf("begin + finish: %.1f allocations", got)
			assert.LessOrEqual(t, got, tc.budget+raceBudget)
		})
	}
}

func stopAllocations(t *testing.T, opts runtimestore.Options) float64 {
	_, s := setup(t, opts)
	require.NoError(t, s.Preload(ctx))
	n := 0
	games := make([]string, 60) // a fresh running record for each stop
	for i := range games {
		games[i] = "alloc-" + strconv.Itoa(i)
		register(t, s, games[i])
	}
	stop := func() {
		g, job := games[n%len(games)], "1-"+strconv.Itoa(n)
		n++
		b, err := s.BeginStop(ctx, stopruntime.BeginRequest{GameID: g, JobID: job, NowMS: 1000 + int64(n), TakeoverMS: 120000})
		require.NoError(t, err)
		require.Equal(t, stopruntime.BeginStarted, b.Verdict)
		o := op(g)
		o.SourceRef, o.StartedAtMS, o.FinishedAtMS, o.RequestedAtMS = job, 1000, 1001, 999
		f, err := s.FinishStop(ctx, stopruntime.FinishRequest{GameID: g, JobID: job, NowMS: 2000 + int64(n), Status: stopruntime.StatusStopped,
			Result: stopruntime.StoredResult{Outcome: stopruntime.OutcomeSuccess, ContainerID: b.Record.ContainerID, EngineEndpoint: b.Record.EngineEndpoint},
			Begun:  b.Record}, o)
		require.NoError(t, err)
		require.Equal(t, stopruntime.FinishOK, f.Verdict)
	}
	stop() // warm the connection pool
	return testing.AllocsPerRun(50, stop)
}
