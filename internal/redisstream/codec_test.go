package redisstream

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
)

func contractCodec(t testing.TB, addr string) *codec {
	t.Helper()
	doc, err := api.Load()
	require.NoError(t, err)
	ch, ok := doc.ChannelByAddress(addr)
	require.True(t, ok)
	c, err := newCodec(ch, 64<<10, 64)
	require.NoError(t, err)
	return c
}

func TestDecodeStopJobFields(t *testing.T) {
	c := contractCodec(t, runtimejobs.StopJobsChannelPath)
	d := c.decode(map[string]any{"game_id": " g1 ", "reason": "game_finished", "requested_at_ms": "1764160000000", "extra": "ignored"})
	require.Nil(t, d.err)
	var job runtimejobs.RuntimeStopJobSchema
	require.NoError(t, json.Unmarshal(d.payload, &job))
	assert.Equal(t, runtimejobs.GameIDSchema(" g1 "), job.GameId, "strings are verbatim")
	assert.Equal(t, "game_finished", job.Reason)
	require.NotNil(t, job.RequestedAtMs)
	assert.Equal(t, int64(1764160000000), *job.RequestedAtMs)
	assert.Equal(t, "g1", d.key, "partition key is trimmed")
	assert.NotContains(t, string(d.payload), "extra")
}

func TestDecodeEmptyOptionalIntegerIsAbsent(t *testing.T) {
	c := contractCodec(t, runtimejobs.StopJobsChannelPath)
	d := c.decode(map[string]any{"game_id": "g1", "reason": "admin_request", "requested_at_ms": ""})
	require.Nil(t, d.err)
	assert.JSONEq(t, `{"game_id":"g1","reason":"admin_request"}`, string(d.payload))
}

func TestDecodeRefusals(t *testing.T) {
	c := contractCodec(t, runtimejobs.StopJobsChannelPath)
	big := strings.Repeat("x", 64<<10+1)
	many := map[string]any{"game_id": "g1", "reason": "game_finished"}
	for i := 0; i < 70; i++ {
		many["f"+strings.Repeat("x", i)] = "v"
	}
	cases := []struct {
		name   string
		values map[string]any
		field  string
		reason string
		key    string
	}{
		{"missing reason", map[string]any{"game_id": "g1"}, "reason", "required field is missing", "g1"},
		{"missing game id", map[string]any{"reason": "game_finished"}, "game_id", "required field is missing", ""},
		{"wrong type", map[string]any{"game_id": "g1", "reason": "game_finished", "requested_at_ms": "soon"}, "requested_at_ms", "not a decimal integer", "g1"},
		{"int overflow", map[string]any{"game_id": "g1", "reason": "game_finished", "requested_at_ms": "99999999999999999999"}, "requested_at_ms", "not a decimal integer", "g1"},
		{"invalid utf-8", map[string]any{"game_id": "g\xff1", "reason": "game_finished"}, "game_id", "not valid UTF-8", ""},
		{"too big", map[string]any{"game_id": "g1", "reason": big}, "reason", "more than the limit", "g1"},
		{"too many fields", many, "", "more than the limit of 64", "g1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := c.decode(tc.values)
			require.NotNil(t, d.err)
			assert.Equal(t, tc.field, d.err.Field)
			assert.Contains(t, d.err.Reason, tc.reason)
			assert.Equal(t, tc.key, d.key, "what can be read is still read")
			assert.True(t, json.Valid(d.payload), "the partial payload is valid JSON: %s", d.payload)
		})
	}
}

func TestEncodeResultFields(t *testing.T) {
	c := contractCodec(t, runtimejobs.JobResultsChannelPath)
	payload, err := json.Marshal(runtimejobs.RuntimeJobResultSchema{
		JobId: "1-0", GameId: "g1", Operation: "stop", Outcome: "success", CompletedAtMs: 42,
		ContainerId: "c", EngineEndpoint: "h:1",
	})
	require.NoError(t, err)
	fields, err := c.encode(payload, nil)
	require.NoError(t, err)
	got := map[string]string{}
	for i := 0; i < len(fields); i += 2 {
		got[fields[i]] = fields[i+1]
	}
	assert.Equal(t, map[string]string{
		"job_id": "1-0", "game_id": "g1", "operation": "stop", "outcome": "success",
		"error_code": "", "error_message": "", "container_id": "c", "engine_endpoint": "h:1",
		"completed_at_ms": "42",
	}, got)
}

func TestEncodeDecodeRoundTripFromFieldsBack(t *testing.T) {
	c := contractCodec(t, runtimejobs.JobResultsChannelPath)
	in := `{"job_id":"1-0","game_id":"g\"1\n\u0001é","operation":"stop","outcome":"failure","error_code":"not_found","error_message":"x","container_id":"","engine_endpoint":"","completed_at_ms":7}`
	fields, err := c.encode([]byte(in), nil)
	require.NoError(t, err)
	values := map[string]any{}
	for i := 0; i < len(fields); i += 2 {
		values[fields[i]] = fields[i+1]
	}
	d := c.decode(values)
	require.Nil(t, d.err)
	assert.JSONEq(t, in, string(d.payload))
}

func TestPayloadEncodingCarriesHeaders(t *testing.T) {
	c, err := newCodec(&api.Channel{Key: "x", Address: "x", Stream: api.StreamExtension{Encoding: api.EncodingPayload}}, 1024, 64)
	require.NoError(t, err)
	fields, err := c.encode([]byte(`{"a":1}`), map[string][]byte{"correlationId": []byte("abc")})
	require.NoError(t, err)
	assert.Equal(t, []string{"payload", `{"a":1}`, "header:correlationId", "abc"}, fields)
	d := c.decode(map[string]any{"payload": `{"a":1}`, "header:correlationId": "abc"})
	require.Nil(t, d.err)
	assert.Equal(t, `{"a":1}`, string(d.payload))
	assert.Equal(t, map[string][]byte{"correlationId": []byte("abc")}, d.headers)
}
