package stopjobs

import (
	"context"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/stopruntime"
)

type nopStopper struct{}

func (nopStopper) Begin(context.Context, stopruntime.Input) (stopruntime.Begun, error) {
	return nil, errors.New("not used by these tests")
}

type nopSender struct{}

func (nopSender) SendAsSendJobResultOperation(context.Context, runtimejobs.RuntimeJobResultMessage) error {
	return nil
}

func newHandler(t *testing.T, doc *api.Document) *Handler {
	t.Helper()
	h, err := New(nopStopper{}, nopSender{}, Options{
		Contract:     doc,
		DeliveryFrom: func(context.Context) (Delivery, bool) { return nil, false },
	})
	require.NoError(t, err)
	return h
}

// The game_id check follows the contract's pattern: the orchestrator's own
// loop when the contract has that pattern, the contract's regexp otherwise.
func TestGameIDCheckFollowsTheContract(t *testing.T) {
	job := func(id string) runtimejobs.RuntimeStopJobSchema {
		return runtimejobs.RuntimeStopJobSchema{GameId: runtimejobs.GameIDSchema(id), Reason: "game_finished"}
	}
	h := newHandler(t, nil)
	require.NoError(t, h.check(job("galaxy.eu-1:42")))
	require.ErrorContains(t, h.check(job("a}b")), "game_id: does not match "+stopruntime.GameIDPattern)

	doc, err := api.Load()
	require.NoError(t, err)
	ch, ok := doc.ChannelByAddress(runtimejobs.StopJobsChannelPath)
	require.True(t, ok)
	ch.Message.Payload.Properties["game_id"].Pattern = `^g[0-9]+$`
	h = newHandler(t, doc)
	require.NoError(t, h.check(job("g42")))
	err = h.check(job("galaxy.eu-1:42"))
	require.Error(t, err)
	assert.True(t, strings.HasSuffix(err.Error(), "does not match ^g[0-9]+$"), err.Error())
}

func TestClip(t *testing.T) {
	require.Equal(t, "short", clip("short"))
	long := strings.Repeat("é", 200) // 400 bytes; a cut at 256 would split none
	got := clip(long)
	require.True(t, utf8.ValidString(got))
	require.True(t, strings.HasSuffix(got, "…(400 bytes)"), got)
	require.LessOrEqual(t, len(got), maxLoggedValue+len("…(400 bytes)"))
	odd := "a" + strings.Repeat("é", 200) // a cut at 256 would split a rune
	require.True(t, utf8.ValidString(clip(odd)))
}
