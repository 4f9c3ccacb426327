package stopruntime_test

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/stopruntime"
)

// Begin answers what needs no runtime at once and never calls the driver;
// otherwise it leaves the record stopping, owned by the job, until Finish.
func TestBeginAnswersAtOnceOrLeavesTheStopToFinish(t *testing.T) {
	e := newEnv(t)
	e.register(t, "g-1", "", "c-1")
	e.register(t, "g-done", stopruntime.StatusStopped, "c-2")

	st, err := e.svc.Begin(ctx, job("g-unknown", "1-0"))
	require.NoError(t, err)
	res, ok := st.Answer()
	require.True(t, ok)
	assert.Equal(t, stopruntime.CodeNotFound, res.ErrorCode)

	st, err = e.svc.Begin(ctx, job("g-done", "1-0"))
	require.NoError(t, err)
	res, ok = st.Answer()
	require.True(t, ok)
	assert.Equal(t, stopruntime.CodeReplayNoOp, res.ErrorCode)
	assert.Empty(t, e.docker.Calls(), "answered without the runtime")

	st, err = e.svc.Begin(ctx, job("g-1", "1-0"))
	require.NoError(t, err)
	_, ok = st.Answer()
	require.False(t, ok, "a running game needs Finish")
	rec := e.get(t, "g-1")
	assert.Equal(t, stopruntime.StatusStopping, rec.Status)
	assert.Equal(t, "1-0", rec.StoppingJobID)
	assert.Empty(t, e.docker.Calls(), "Begin never waits for the runtime")

	// While the stop waits for its runtime, other jobs of the game are busy.
	_, err = e.svc.Begin(ctx, job("g-1", "2-0"))
	require.ErrorIs(t, err, stopruntime.ErrBusy)

	res, err = st.Finish(ctx)
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, res.Outcome)
	assert.Equal(t, "c-1", res.Record.ContainerID)
	assert.Equal(t, stopruntime.StatusStopped, e.get(t, "g-1").Status)
	assert.Len(t, e.docker.Calls(), 1)

	// The job's replay gets the stored answer from Begin.
	st, err = e.svc.Begin(ctx, job("g-1", "1-0"))
	require.NoError(t, err)
	again, ok := st.Answer()
	require.True(t, ok)
	assert.Equal(t, res, again)
}

// Begin allocates one waiting Stop per job that reaches its runtime; an
// answer has a type of its own, so a Stop does not carry an unused Result
// (440 bytes, which put a Stop in the 1,152-byte size class).
func TestWaitingStopCarriesNoAnswer(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(stopruntime.Stop{}), uintptr(704))
}
