package stopruntime_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/stopruntime"
)

// An operation log that cannot take entries (here a key of another type)
// withholds no answer: a job retried for its log entry alone would end,
// after its last delivery, as a false failure/internal.
func TestFailedLogWriteWithholdsNoAnswer(t *testing.T) {
	e := newEnv(t)
	require.NoError(t, e.rdb.Set(ctx, e.store.OperationsKey(), "not a stream", 0).Err())

	// Answered at begin (AppendOperation).
	res, err := e.svc.Handle(ctx, job("g-unknown", "1-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.CodeNotFound, res.ErrorCode)

	// Answered at finish (the entry goes with the finishing script).
	e.register(t, "g1", "", "c1")
	res, err = e.svc.Handle(ctx, job("g1", "2-0"))
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, res.Outcome)
	assert.Equal(t, stopruntime.StatusStopped, e.get(t, "g1").Status)
	again, err := e.svc.Handle(ctx, job("g1", "2-0"))
	require.NoError(t, err)
	assert.Equal(t, res, again, "a redelivery answers the same")

	// No answer yet stays no answer, with its own error only.
	e.register(t, "g2", "", "c2")
	st, err := e.svc.Begin(ctx, job("g2", "3-0"))
	require.NoError(t, err)
	_, ok := st.Answer()
	require.False(t, ok)
	_, err = e.svc.Handle(ctx, job("g2", "4-0"))
	require.ErrorIs(t, err, stopruntime.ErrBusy)
	assert.NotContains(t, err.Error(), "log operation")
}
