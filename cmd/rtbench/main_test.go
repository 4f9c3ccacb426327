package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBinaryEnvTakesKeyValuePairs(t *testing.T) {
	c, err := parseFlags([]string{"--binary-env", "GOMAXPROCS=1, GOGC=200,GODEBUG=gctrace=1"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{"GOMAXPROCS=1", "GOGC=200", "GODEBUG=gctrace=1"}, c.BinaryEnv)
	assert.Equal(t, ", GOMAXPROCS=1 GOGC=200 GODEBUG=gctrace=1", envNote(c.BinaryEnv))

	c, err = parseFlags(nil, io.Discard)
	require.NoError(t, err)
	assert.Empty(t, c.BinaryEnv)
	assert.Empty(t, envNote(c.BinaryEnv))
}

func TestBinaryEnvRejectsWhatIsNotKeyValue(t *testing.T) {
	for _, v := range []string{"GOMAXPROCS", "=1", "GOGC=100,oops"} {
		_, err := parseFlags([]string{"--binary-env", v}, io.Discard)
		assert.ErrorContains(t, err, "--binary-env", v)
	}
}

func TestTraceNeedsTheInProcessLatencyRuns(t *testing.T) {
	for _, skip := range []string{"inproc", "latency", "old,latency"} {
		_, err := parseFlags([]string{"--trace", "t.out", "--skip", skip}, io.Discard)
		require.ErrorContains(t, err, "--trace", skip)
	}
	c, err := parseFlags([]string{"--trace", "t.out", "--skip", "binary,old"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "t.out", c.Trace)
}

func TestRateWarmupRefusesANegativeDuration(t *testing.T) {
	_, err := parseFlags([]string{"--rate-warmup", "-1s"}, io.Discard)
	require.ErrorContains(t, err, "--rate-warmup")
	c, err := parseFlags([]string{"--rate-warmup", "0"}, io.Discard)
	require.NoError(t, err)
	assert.Zero(t, c.RateWarmup)
}

func TestSkipNamesOnlyKnownParts(t *testing.T) {
	c, err := parseFlags([]string{"--skip", "ceiling-process, mass"}, io.Discard)
	require.NoError(t, err)
	assert.True(t, c.Skip["ceiling-process"])
	assert.True(t, c.Skip["mass"])
	_, err = parseFlags([]string{"--skip", "inproc,clustr"}, io.Discard)
	require.ErrorContains(t, err, `--skip "clustr"`, "a misspelt part would otherwise run everything it meant to skip")
}
