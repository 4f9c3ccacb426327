package startruntime_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/stopruntime"
)

// An operation log that cannot take entries (a key of another type)
// withholds no answer of a start job: not the one given at once (invalid
// job, replay), not the one the finishing script records.
func TestFailedLogWriteWithholdsNoStartAnswer(t *testing.T) {
	e := newEnv(t, 20*time.Second)
	e.cleanup(t, "g1")
	ctx := context.Background()
	require.NoError(t, e.rdb.Set(ctx, e.store.OperationsKey(), "not a stream", 0).Err())

	res, err := e.svc.Handle(ctx, in("g1", "no-such-engine", "1-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.CodeInvalidJob, res.ErrorCode)

	res, err = e.svc.Handle(ctx, in("g1", "demo", "2-0"))
	require.NoError(t, err)
	require.Equal(t, stopruntime.OutcomeSuccess, res.Outcome, res.ErrorMessage)
	rec, ok, err := e.store.Get(ctx, "g1")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, stopruntime.StatusRunning, rec.Status)

	replay, err := e.svc.Handle(ctx, in("g1", "demo", "3-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.CodeReplayNoOp, replay.ErrorCode)
}
