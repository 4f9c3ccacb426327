package runtimestore_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
)

const events = "runtime:events"

func exitChange(id string, code int64) runtimestore.Change {
	return runtimestore.Change{GameID: id, ContainerID: "c-" + id, From: "running", To: "exited", NowMS: 500,
		ExitCode: &code, Reason: "killed", Event: []string{"game_id", id, "type", "engine_exited"}}
}

func TestTransitionWritesOneEventPerChange(t *testing.T) {
	c, s := setup(t, runtimestore.Options{})
	register(t, s, "g")
	id, err := s.Transition(ctx, events, 1000, exitChange("g", 137))
	require.NoError(t, err)
	assert.NotEmpty(t, id)

	// A second replica that saw the same exit: the record changed, no event.
	_, err = s.Transition(ctx, events, 1000, exitChange("g", 137))
	require.ErrorIs(t, err, runtimestore.ErrStale)
	msgs, err := c.XRange(ctx, events, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 1)
	assert.Equal(t, id, msgs[0].ID)
	assert.Equal(t, map[string]any{"game_id": "g", "type": "engine_exited"}, msgs[0].Values)

	rec, ok, err := s.Get(ctx, "g")
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, "exited", rec.Status)
	require.NotNil(t, rec.ExitCode)
	assert.Equal(t, int64(137), *rec.ExitCode)
	assert.Equal(t, int64(500), rec.FinishedAtMS)
	assert.Equal(t, "killed", rec.FailureReason)

	// A stop job after the exit is a replay; a start job starts anew.
	b, err := s.BeginStop(ctx, stopruntime.BeginRequest{GameID: "g", JobID: "9-0", NowMS: 600, TakeoverMS: 1000})
	require.NoError(t, err)
	assert.Equal(t, stopruntime.BeginReplay, b.Verdict)
	assert.Equal(t, "exited", b.Record.Status)
}

func TestTransitionChecksContainerAndStatus(t *testing.T) {
	c, s := setup(t, runtimestore.Options{})
	register(t, s, "g")
	ch := exitChange("g", 1)
	ch.ContainerID = "an-older-container"
	_, err := s.Transition(ctx, events, 1000, ch)
	require.ErrorIs(t, err, runtimestore.ErrStale)

	// A stop job owns the game: the exit is its business, no event.
	_, err = s.BeginStop(ctx, stopruntime.BeginRequest{GameID: "g", JobID: "1-0", NowMS: 200, TakeoverMS: 1000})
	require.NoError(t, err)
	_, err = s.Transition(ctx, events, 1000, exitChange("g", 1))
	require.ErrorIs(t, err, runtimestore.ErrStale)
	_, err = s.Transition(ctx, events, 1000, exitChange("nobody", 1))
	require.ErrorIs(t, err, runtimestore.ErrStale)
	n, err := c.Exists(ctx, events).Result()
	require.NoError(t, err)
	assert.Zero(t, n)
}

// The script checks before it writes: an events key of the wrong type
// leaves the record as it was.
func TestTransitionWritesNothingOnWrongTypeEventsKey(t *testing.T) {
	c, s := setup(t, runtimestore.Options{})
	register(t, s, "g")
	require.NoError(t, c.Set(ctx, events, "x", 0).Err())
	_, err := s.Transition(ctx, events, 1000, exitChange("g", 1))
	require.Error(t, err)
	require.NotErrorIs(t, err, runtimestore.ErrStale)
	rec, _, err := s.Get(ctx, "g")
	require.NoError(t, err)
	assert.Equal(t, "running", rec.Status)
}

func TestUnhealthyAndBack(t *testing.T) {
	c, s := setup(t, runtimestore.Options{})
	register(t, s, "g")
	_, err := s.Transition(ctx, events, 1000, runtimestore.Change{GameID: "g", ContainerID: "c-g", From: "running", To: "unhealthy",
		NowMS: 300, Reason: "3 checks failed", Event: []string{"type", "unhealthy"}})
	require.NoError(t, err)
	rec, _, err := s.Get(ctx, "g")
	require.NoError(t, err)
	assert.Equal(t, "unhealthy", rec.Status)
	assert.Equal(t, int64(300), rec.UnhealthySinceMS)

	// A start job finds it running (the same runtime).
	v, _, _, err := s.BeginStart(ctx, "g", "5-0", "demo", 310, 1000)
	require.NoError(t, err)
	assert.Equal(t, runtimestore.StartReplay, v)

	_, err = s.Transition(ctx, events, 1000, runtimestore.Change{GameID: "g", ContainerID: "c-g", From: "unhealthy", To: "running",
		NowMS: 400, Reason: "answers again", Event: []string{"type", "healthy"}})
	require.NoError(t, err)
	rec, _, err = s.Get(ctx, "g")
	require.NoError(t, err)
	assert.Equal(t, "running", rec.Status)
	assert.Zero(t, rec.UnhealthySinceMS)
	assert.Empty(t, rec.FailureReason)
	assert.Equal(t, int64(2), c.XLen(ctx, events).Val())
}

func TestWatchedListsRunningAndUnhealthy(t *testing.T) {
	c, s := setup(t, runtimestore.Options{})
	for _, id := range []string{"a", "b", "c"} {
		register(t, s, id)
	}
	_, err := s.Transition(ctx, events, 1000, exitChange("b", 0))
	require.NoError(t, err)
	// Keys under the prefix that are no records are skipped.
	require.NoError(t, c.Set(ctx, "rtmanager:runtime:{junk}", "x", 0).Err())
	require.NoError(t, c.HSet(ctx, "rtmanager:runtime:{bad id!}", "status", "running").Err())
	recs, err := s.Watched(ctx, "running", "unhealthy")
	require.NoError(t, err)
	ids := map[string]string{}
	for _, r := range recs {
		ids[r.GameID] = r.ContainerID
	}
	assert.Equal(t, map[string]string{"a": "c-a", "c": "c-c"}, ids)
}
