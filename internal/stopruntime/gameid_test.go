package stopruntime_test

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/stopruntime"
)

// The hand-written check and the pattern agree on fixed cases and on random
// strings drawn from the bytes that matter.
func TestValidGameIDIsThePattern(t *testing.T) {
	re := regexp.MustCompile(stopruntime.GameIDPattern)
	check := func(id string) {
		t.Helper()
		require.Equal(t, re.MatchString(id), stopruntime.ValidGameID(id), "%q", id)
	}
	for _, id := range []string{"", "a", "A9", "0", "g-1", "galaxy.eu-1:42", "a_b", "-a", ".a", "_a", ":a",
		"a}", "a{b", "a b", "a\n", "é", "a\x00", strings.Repeat("a", 128), strings.Repeat("a", 129), "a" + strings.Repeat("-", 127)} {
		check(id)
	}
	const alphabet = "aZ09._:-{} \n\x00\xc3\xa9/"
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		n := rng.IntN(132)
		b := make([]byte, n)
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		check(string(b))
	}
}

// The orchestrator enforces the contract's own GameID pattern.
func TestGameIDPatternIsTheContracts(t *testing.T) {
	doc, err := api.Load()
	require.NoError(t, err)
	ch, ok := doc.ChannelByAddress("runtime:stop_jobs")
	require.True(t, ok)
	assert.Equal(t, stopruntime.GameIDPattern, ch.Message.Payload.Properties["game_id"].Pattern)
}
