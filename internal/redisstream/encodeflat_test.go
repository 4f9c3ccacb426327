package redisstream

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
)

// encodeGeneral is encode without its fast path.
func encodeGeneral(c *codec, payload []byte) ([]string, error) {
	f := *c
	return f.encodeSlow(payload)
}

// The fast path of encode gives exactly what the general path gives, or
// steps aside.
func TestEncodeFlatMatchesGeneralPath(t *testing.T) {
	c := contractCodec(t, runtimejobs.JobResultsChannelPath)
	res := runtimejobs.RuntimeJobResultSchema{JobId: "1-0", GameId: "g-1", Operation: "stop", Outcome: "success", CompletedAtMs: 1764160000000}
	generated, err := json.Marshal(res)
	require.NoError(t, err)
	cases := []string{
		string(generated),
		`{}`, ` { } `, `{"game_id":"g"}`, `{"game_id":null}`, `{"zeta":1,"alpha":true,"game_id":"g","x":null}`,
		`{"game_id":"g","game_id":"h"}`, `{"game_id":null,"game_id":"h"}`, `{"a":1,"a":2}`, `{"a":null,"a":2}`,
		`{"game_id":"g\u00e9"}`, `{"game_id":"a\"b"}`, `{"game_id":"é"}`, `{"n":-0.5e+10}`, `{"n":01}`, `{"n":1.}`,
		`{"n":-}`, `{"o":{"a":1}}`, `{"l":[1,2]}`, `{"game_id":"g"} trailing`, `{"game_id":"g"`, `{"game_id" "g"}`,
		`{"b":tru}`, `{"b":truex}`, `[]`, `"s"`, ``, `{,}`, `{"a":1,}`, "{\"a\":\"tab\there\"}", `{"completed_at_ms":1764160000000,"outcome":"failure"}`,
	}
	for _, p := range cases {
		fast, ok := c.encodeFlat([]byte(p))
		slow, serr := encodeGeneral(c, []byte(p))
		if !ok {
			continue
		}
		require.NoError(t, serr, "fast path accepted %s", p)
		assert.Equal(t, slow, fast, "payload %s", p)
	}
	fast, ok := c.encodeFlat(generated)
	require.True(t, ok, "what the generated code marshals takes the fast path")
	slow, _ := encodeGeneral(c, generated)
	assert.Equal(t, slow, fast)

	// Random mutations of valid payloads (deterministic seed).
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte(`{}[]":,0123456789-+.eEtrufalsn \ab_é`)
	for i := 0; i < 20000; i++ {
		p := []byte(cases[rng.IntN(len(cases))])
		for k := rng.IntN(4); k >= 0 && len(p) > 0; k-- {
			pos := rng.IntN(len(p))
			switch rng.IntN(3) {
			case 0:
				p[pos] = alphabet[rng.IntN(len(alphabet))]
			case 1:
				p = append(p[:pos], p[pos+1:]...)
			default:
				p = append(p[:pos], append([]byte{alphabet[rng.IntN(len(alphabet))]}, p[pos:]...)...)
			}
		}
		fast, ok := c.encodeFlat(p)
		if !ok {
			continue
		}
		slow, serr := encodeGeneral(c, bytes.Clone(p))
		require.NoError(t, serr, "fast path accepted %q", p)
		require.Equal(t, slow, fast, "payload %q", p)
	}
}
