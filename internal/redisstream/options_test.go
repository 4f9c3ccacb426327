package redisstream

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

// Zero options take the exported defaults, which binaries use for their
// flags: the two are one source.
func TestZeroOptionsTakeTheExportedDefaults(t *testing.T) {
	var o Options
	require.NoError(t, o.setDefaults())
	require.NoError(t, o.Validate())
	assert.NotNil(t, o.Contract)
	assert.NotEmpty(t, o.Consumer)
	assert.Equal(t, DefaultStartID, o.StartID)
	assert.Equal(t, DefaultReadCount, o.ReadCount)
	assert.Zero(t, o.Prefetch, "derived per channel from ReadCount and its subscriptions")
	assert.Equal(t, int64(DefaultMaxBytesInHand), o.MaxBytesInHand)
	assert.Equal(t, DefaultBlock, o.Block)
	assert.Equal(t, DefaultMaxDeliveries, o.MaxDeliveries)
	assert.Equal(t, DefaultRetryBackoff, o.RetryBackoff)
	assert.Equal(t, DefaultMaxRetryBackoff, o.MaxRetryBackoff)
	assert.Equal(t, DefaultClaimIdle, o.ClaimIdle)
	assert.Equal(t, DefaultClaimIdle/DefaultClaimIntervalDivisor, o.ClaimInterval)
	assert.Equal(t, DefaultConsumerIdle, o.ConsumerIdle)
	assert.Equal(t, DefaultMaxFieldSize, o.MaxFieldSize)
	assert.Equal(t, DefaultMaxFields, o.MaxFields)
	assert.Equal(t, DefaultCommitBatch, o.CommitBatch)
	assert.Equal(t, DefaultMaxContinuing, o.MaxContinuing)
	assert.Equal(t, DefaultReconnectMin, o.ReconnectMin)
	assert.Equal(t, DefaultReconnectMax, o.ReconnectMax)
	assert.NotNil(t, o.Logger)
	assert.NotNil(t, o.Observer)
	// A redelivery never waits so long that another consumer claims it.
	assert.Less(t, DefaultMaxRetryBackoff, DefaultClaimIdle)
}

// Set options are kept; only zero (or, where documented, negative) ones
// are filled.
func TestSetOptionsAreKept(t *testing.T) {
	o := Options{Consumer: "c", StartID: "$", ClaimIdle: 3e9, MaxContinuing: -1, ConsumerIdle: -1}
	require.NoError(t, o.setDefaults())
	assert.Equal(t, "c", o.Consumer)
	assert.Equal(t, "$", o.StartID)
	assert.Equal(t, int64(3e9), int64(o.ClaimIdle))
	assert.Equal(t, int64(1e9), int64(o.ClaimInterval), "derived from the set ClaimIdle")
	assert.Equal(t, -1, o.MaxContinuing)
	assert.Equal(t, int64(-1), int64(o.ConsumerIdle))
}

func TestValidateRefusesABadStartID(t *testing.T) {
	require.NoError(t, Options{}.Validate())
	require.NoError(t, Options{StartID: "1764160000000-0"}.Validate())
	err := Options{StartID: "yesterday"}.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"yesterday"`)
	srv := testredis.Start(t)
	rdb := srv.Client()
	defer rdb.Close()
	_, err = New(rdb, Options{StartID: "yesterday"})
	require.Error(t, err, "New validates")
}
