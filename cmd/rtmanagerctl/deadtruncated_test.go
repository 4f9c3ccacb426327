package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

// A dead letter the broker cut to its bounds (dead_truncated) is not
// replayed: it would send a job other than the one written.
func TestDeadReplayRefusesATruncatedDeadLetter(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()
	id := addDead(t, c, "dead_reason", "undecodable", "dead_error", "e", "original_id", "1-0",
		"delivery_count", "1", "dead_at_ms", "1", "game_id", "g1", "reason", "game_fin",
		"dead_truncated", "copied 2 of 4002 fields")
	o := cli(t, srv.URL(), "dead", "replay", id)
	assert.NotEqual(t, 0, o.code)
	assert.Contains(t, o.stderr, "dead_truncated")
	n, err := c.XLen(tctx(t), jobsKey).Result()
	require.NoError(t, err)
	assert.Zero(t, n, "nothing replayed")
	n, err = c.XLen(tctx(t), deadKey).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "the dead letter stays")

	// --all replays the others and fails at the end.
	addDead(t, c, "dead_reason", "invalid", "dead_error", "e", "original_id", "2-0",
		"delivery_count", "1", "dead_at_ms", "1", "game_id", "g2", "reason", "game_finished")
	o = cli(t, srv.URL(), "dead", "replay", "--all")
	assert.NotEqual(t, 0, o.code)
	assert.Contains(t, o.stderr, "dead_truncated")
	jobs, err := c.XRange(tctx(t), jobsKey, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	assert.Equal(t, "g2", jobs[0].Values["game_id"])
}

// dead list reads the broker's layout whole: dead_truncated is the
// broker's note, not a field of the job, and a job field of that name
// (kept as original.dead_truncated) is shown under its own name.
func TestDeadListSeparatesTheTruncationNoteFromTheJob(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()
	addDead(t, c, "dead_reason", "undecodable", "dead_error", "e", "original_id", "1-0",
		"delivery_count", "1", "dead_at_ms", "1", "game_id", "g1", "reason", "game_finished",
		"original.dead_truncated", "mine", "dead_truncated", "copied 3 of 3 fields")
	o := cli(t, srv.URL(), "dead", "list", "--json")
	requireOK(t, o)
	list := decode[[]deadView](t, o.stdout)
	require.Len(t, list, 1)
	assert.Equal(t, "copied 3 of 3 fields", list[0].Truncated)
	assert.Equal(t, map[string]string{"game_id": "g1", "reason": "game_finished", "dead_truncated": "mine"}, list[0].Fields)
}
