package runtimestore_test

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
)

// Calls are recycled (pool.go): concurrent stops, some of whose callers
// give up while their call is queued or on the wire, must each read their
// own record and write their own answer.
func TestRecycledCallsKeepStopsApart(t *testing.T) {
	_, s := setup(t, runtimestore.Options{})
	const workers, rounds = 32, 40
	for w := range workers {
		for r := range rounds {
			g := "p-" + strconv.Itoa(w) + "-" + strconv.Itoa(r)
			_, err := s.Register(ctx, stopruntime.Record{GameID: g, Status: "running", ContainerID: "c-" + g, EngineEndpoint: "e-" + g, Runtime: "none", UpdatedAtMS: 1})
			require.NoError(t, err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				g, job := "p-"+strconv.Itoa(w)+"-"+strconv.Itoa(r), strconv.Itoa(w)+"-"+strconv.Itoa(r)
				if r%2 == 0 {
					// A caller that gives up while its call is queued or on
					// the wire: the call may still be sent, and must not be
					// handed to another caller meanwhile.
					cctx, cancel := context.WithCancel(ctx)
					go func() {
						for range r % 7 {
							runtime.Gosched()
						}
						cancel()
					}()
					_, _ = s.BeginStop(cctx, stopruntime.BeginRequest{GameID: g, JobID: "gone-" + job, NowMS: 5, TakeoverMS: 1})
					cancel()
				}
				b, err := s.BeginStop(ctx, stopruntime.BeginRequest{GameID: g, JobID: job, NowMS: 10, TakeoverMS: 1})
				if err != nil {
					errs <- err
					return
				}
				if b.Record.ContainerID != "c-"+g || b.Record.EngineEndpoint != "e-"+g || b.Record.StoppingJobID == "" {
					errs <- assert.AnError
					t.Errorf("game %s: begin answered with %+v", g, b.Record)
					return
				}
				o := stopruntime.Operation{GameID: g, Operation: "stop", Source: stopruntime.OpSourceLobbyStream, SourceRef: job, Outcome: "success"}
				res := stopruntime.StoredResult{Outcome: stopruntime.OutcomeSuccess, ContainerID: "c-" + g, EngineEndpoint: "e-" + g}
				f, err := s.FinishStop(ctx, stopruntime.FinishRequest{GameID: g, JobID: job, NowMS: 20, Status: stopruntime.StatusStopped, Result: res, Begun: b.Record}, o)
				if err != nil {
					errs <- err
					return
				}
				if f.Verdict != stopruntime.FinishOK || f.Record.LastResult != res {
					errs <- assert.AnError
					t.Errorf("game %s: finish answered %s with %+v", g, f.Verdict, f.Record)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	for w := range workers {
		for r := range rounds {
			g, job := "p-"+strconv.Itoa(w)+"-"+strconv.Itoa(r), strconv.Itoa(w)+"-"+strconv.Itoa(r)
			rec, ok, err := s.Get(ctx, g)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Equal(t, stopruntime.StatusStopped, rec.Status, g)
			assert.Equal(t, job, rec.LastJobID, g)
			assert.Equal(t, "c-"+g, rec.LastResult.ContainerID, g)
		}
	}
}
