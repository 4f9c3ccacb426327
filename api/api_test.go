package api_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
)

func TestContractModel(t *testing.T) {
	doc, err := api.Load()
	require.NoError(t, err)
	require.NotEmpty(t, doc.Version)

	jobs, ok := doc.ChannelByAddress(runtimejobs.StopJobsChannelPath)
	require.True(t, ok)
	assert.Equal(t, api.EncodingFields, jobs.Stream.Encoding)
	assert.Equal(t, "game_id", jobs.Stream.PartitionKey)
	assert.NotEmpty(t, jobs.Stream.Group)
	assert.Positive(t, jobs.Stream.MaxLen)
	dead := doc.Channels[jobs.Stream.DeadLetter]
	require.NotNil(t, dead)
	assert.Equal(t, runtimejobs.StopJobsDeadChannelPath, dead.Address)

	p := jobs.Message.Payload
	assert.Equal(t, "#/components/schemas/RuntimeStopJob", jobs.Message.SchemaRef)
	assert.Equal(t, "string", p.Properties["game_id"].Type, "$ref of a property is resolved")
	assert.Equal(t, "integer", p.Properties["requested_at_ms"].Type)
	assert.True(t, p.IsRequired("game_id"))
	assert.False(t, p.IsRequired("requested_at_ms"))
}

func TestParseRefusesBrokenExtensions(t *testing.T) {
	_, err := api.Parse([]byte(`
asyncapi: 3.0.0
info: {title: t, version: 1.0.0}
channels:
  a:
    address: a
    x-redis-stream: {encoding: csv}
`))
	require.ErrorContains(t, err, "unknown x-redis-stream encoding")

	_, err = api.Parse([]byte(`
asyncapi: 3.0.0
info: {title: t, version: 1.0.0}
channels:
  a:
    address: a
    x-redis-stream: {dead-letter: nowhere}
`))
	require.ErrorContains(t, err, "dead-letter channel")
}

// Every example of the contract survives the generated types unchanged: what
// the contract shows is what the Go code reads and writes.
func TestExamplesRoundTripThroughGeneratedTypes(t *testing.T) {
	doc, err := api.Load()
	require.NoError(t, err)
	decoders := map[string]func([]byte) (any, error){
		"RuntimeStopJob": func(b []byte) (any, error) {
			var m runtimejobs.RuntimeStopJobMessage
			err := json.Unmarshal(b, &m.Payload)
			return m.Payload, err
		},
		"RuntimeJobResult": func(b []byte) (any, error) {
			var m runtimejobs.RuntimeJobResultMessage
			err := json.Unmarshal(b, &m.Payload)
			return m.Payload, err
		},
		"RuntimeStopJobDeadLetter": func(b []byte) (any, error) {
			var m runtimejobs.RuntimeStopJobDeadLetterMessage
			err := json.Unmarshal(b, &m.Payload)
			return m.Payload, err
		},
		"RuntimeStartJob": func(b []byte) (any, error) {
			var m runtimejobs.RuntimeStartJobMessage
			err := json.Unmarshal(b, &m.Payload)
			return m.Payload, err
		},
		"RuntimeStartJobDeadLetter": func(b []byte) (any, error) {
			var m runtimejobs.RuntimeStartJobDeadLetterMessage
			err := json.Unmarshal(b, &m.Payload)
			return m.Payload, err
		},
		"RuntimeEvent": func(b []byte) (any, error) {
			var m runtimejobs.RuntimeEventMessage
			err := json.Unmarshal(b, &m.Payload)
			return m.Payload, err
		},
	}
	seen := 0
	for _, ch := range doc.Channels {
		msg := ch.Message
		require.NotEmpty(t, msg.Examples, "message %s has no examples", msg.Name)
		decode := decoders[msg.Name]
		require.NotNil(t, decode, "no generated type known for %s", msg.Name)
		for _, ex := range msg.Examples {
			in, err := json.Marshal(ex.Payload)
			require.NoError(t, err)
			typed, err := decode(in)
			require.NoError(t, err, "%s/%s", msg.Name, ex.Name)
			out, err := json.Marshal(typed)
			require.NoError(t, err)
			var back map[string]any
			require.NoError(t, json.Unmarshal(out, &back))
			want := ex.Payload
			if msg.Name == "RuntimeStopJobDeadLetter" || msg.Name == "RuntimeStartJobDeadLetter" {
				// Original fields are extra stream fields, outside the typed payload.
				want = map[string]any{}
				for _, name := range msg.Payload.PropertyNames() {
					if v, ok := ex.Payload[name]; ok {
						want[name] = v
					}
				}
			}
			assert.Equal(t, want, back, "%s/%s", msg.Name, ex.Name)
			seen++
		}
	}
	assert.GreaterOrEqual(t, seen, 6)
}
