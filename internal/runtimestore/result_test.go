package runtimestore

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/stopruntime"
)

// encodeResult writes what json.Marshal writes, byte for byte, for fixed
// awkward values and for random bytes (control bytes, HTML characters,
// invalid UTF-8, U+2028/U+2029, multi-byte text).
func TestEncodeResultIsJSONMarshal(t *testing.T) {
	check := func(r stopruntime.StoredResult) {
		t.Helper()
		want, err := json.Marshal(r)
		require.NoError(t, err)
		require.Equal(t, string(want), encodeResult(r), "%q", r)
	}
	check(stopruntime.StoredResult{})
	check(stopruntime.StoredResult{Outcome: "success", ContainerID: "pid:1:start:2", EngineEndpoint: "127.0.0.1:8080"})
	check(stopruntime.StoredResult{Outcome: "failure", ErrorCode: "stop_failed",
		ErrorMessage: "a \"b\" \\ <c> & \b\f\n\r\t\x00\x1f\x7f é \u2028\u2029 \xff\xfe \xe2\x80 \U0001F600"})
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "\"", "\\", "<", ">", "&", "\n", "\x01", "\x1f", "\x7f", "\x80", "\xff", "é", "\u2028", "\u2029", "\U0001F600", "\xe2\x80", " "}
	text := func() string {
		var b []byte
		for range rng.IntN(12) {
			if rng.IntN(3) == 0 {
				b = append(b, byte(rng.IntN(256)))
			} else {
				b = append(b, alphabet[rng.IntN(len(alphabet))]...)
			}
		}
		return string(b)
	}
	for range 20000 {
		check(stopruntime.StoredResult{Outcome: stopruntime.Outcome(text()), ErrorCode: text(), ErrorMessage: text(),
			ContainerID: text(), EngineEndpoint: text()})
	}
}
