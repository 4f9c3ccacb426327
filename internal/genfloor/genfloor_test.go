package genfloor_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/genfloor"
)

func TestRunAnswersEveryMessage(t *testing.T) {
	res, err := genfloor.Run(context.Background(), 2000)
	require.NoError(t, err)
	assert.Equal(t, 2000, res.Messages)
	assert.Positive(t, res.CPUPerMsg(), "the process's CPU over the run")
	// The generated code decodes and encodes JSON and formats each message:
	// far more than one allocation per message.
	assert.Greater(t, res.AllocsPerMsg(), 10.0)
	assert.Greater(t, res.BytesPerMsg(), 500.0)
	assert.Positive(t, res.Wall)
}

func TestRunRefusesNoMessages(t *testing.T) {
	_, err := genfloor.Run(context.Background(), 0)
	require.Error(t, err)
}

func TestRunEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := genfloor.Run(ctx, 1_000_000)
	require.ErrorIs(t, err, context.Canceled)
}

func TestZeroResultHasNoRates(t *testing.T) {
	var r genfloor.Result
	assert.Zero(t, r.CPUPerMsg())
	assert.Zero(t, r.AllocsPerMsg())
	assert.Zero(t, r.BytesPerMsg())
}
