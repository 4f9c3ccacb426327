package runtimes

import (
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Engine ports come from below the ephemeral range, so an outgoing
// connection cannot take one between its choice and the engine's bind.
func TestFreePortIsBelowTheEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	if low-minPort < 1000 {
		t.Skipf("ephemeral range starts at %d: no room below it", low)
	}
	for range 20 {
		p, err := FreePort()
		require.NoError(t, err)
		assert.GreaterOrEqual(t, p, minPort)
		assert.Less(t, p, low)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		require.NoError(t, err, "the port is free")
		require.NoError(t, l.Close())
	}
}
