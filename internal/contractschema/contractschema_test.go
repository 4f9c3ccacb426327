package contractschema_test

import (
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/contractschema"
)

func load(t *testing.T) (*api.Document, *contractschema.Validator) {
	t.Helper()
	doc, err := api.Load()
	require.NoError(t, err)
	v, err := contractschema.New(doc)
	require.NoError(t, err)
	return doc, v
}

func TestEveryChannelHasASchema(t *testing.T) {
	_, v := load(t)
	assert.Equal(t, []string{
		runtimejobs.RuntimeEventsChannelPath,
		runtimejobs.JobResultsChannelPath,
		runtimejobs.StartJobsChannelPath,
		runtimejobs.StartJobsDeadChannelPath,
		runtimejobs.StopJobsChannelPath,
		runtimejobs.StopJobsDeadChannelPath,
	}, v.Addresses())
}

// Every example the contract shows is valid under the contract's own schema.
func TestContractExamplesValidate(t *testing.T) {
	doc, v := load(t)
	n := 0
	for key, ch := range doc.Channels {
		require.NotNil(t, ch.Message, key)
		require.NotEmpty(t, ch.Message.Examples, "channel %s has no examples to check", key)
		for _, ex := range ch.Message.Examples {
			n++
			require.NoError(t, v.Validate(ch.Address, ex.Payload), "%s example %s", key, ex.Name)
		}
	}
	assert.GreaterOrEqual(t, n, 6)
}

func validResult() map[string]any {
	return map[string]any{
		"job_id":          "1764160000000-0",
		"game_id":         "g-7f3a2c",
		"operation":       "stop",
		"outcome":         "success",
		"error_code":      "",
		"error_message":   "",
		"container_id":    "4f1c9a0e2b7d",
		"engine_endpoint": "10.0.3.17:7000",
		"completed_at_ms": int64(1764160000420),
	}
}

func validDeadLetter() map[string]any {
	return map[string]any{
		"dead_reason":    "undecodable",
		"dead_error":     "requested_at_ms: not an integer",
		"original_id":    "1764160000003-0",
		"delivery_count": 1,
		"dead_at_ms":     uint64(1764160000700),
		// The original fields follow as further properties.
		"game_id":         "g-7f3a2c",
		"requested_at_ms": "soon",
	}
}

func with(base map[string]any, key string, value any) map[string]any {
	out := make(map[string]any, len(base))
	for k, v := range base {
		out[k] = v
	}
	out[key] = value
	return out
}

func without(base map[string]any, key string) map[string]any {
	out := with(base, key, nil)
	delete(out, key)
	return out
}

func TestValidPayloadsOfGoTypes(t *testing.T) {
	_, v := load(t)
	assert.NoError(t, v.Validate(runtimejobs.JobResultsChannelPath, validResult()))
	assert.NoError(t, v.Validate(runtimejobs.StopJobsDeadChannelPath, validDeadLetter()))
	assert.NoError(t, v.Validate(runtimejobs.StopJobsChannelPath, map[string]any{
		"game_id": "galaxy.eu-1:42", "reason": "idle_timeout", "requested_at_ms": int32(0),
	}))
}

func TestBadPayloadsFailWithReason(t *testing.T) {
	_, v := load(t)
	job := map[string]any{"game_id": "g-1", "reason": "game_finished"}
	tests := []struct {
		name    string
		channel string
		payload map[string]any
		reason  string
	}{
		{"job without game_id", runtimejobs.StopJobsChannelPath, without(job, "game_id"), "missing property 'game_id'"},
		{"job with unknown reason", runtimejobs.StopJobsChannelPath, with(job, "reason", "vacation"), "'/reason': value must be one of"},
		{"job with empty game_id", runtimejobs.StopJobsChannelPath, with(job, "game_id", ""), "minLength: got 0, want 1"},
		{"job with game_id over 128", runtimejobs.StopJobsChannelPath, with(job, "game_id", strings.Repeat("g", 129)), "maxLength: got 129, want 128"},
		{"job with game_id off pattern", runtimejobs.StopJobsChannelPath, with(job, "game_id", "-g"), "'-g' does not match pattern"},
		{"job with negative time", runtimejobs.StopJobsChannelPath, with(job, "requested_at_ms", -1), "minimum: got -1, want 0"},
		{"job with time as text", runtimejobs.StopJobsChannelPath, with(job, "requested_at_ms", "12"), "'/requested_at_ms': got string, want integer"},
		{"job with fractional time", runtimejobs.StopJobsChannelPath, with(job, "requested_at_ms", 1.5), "got number, want integer"},
		{"result without completed_at_ms", runtimejobs.JobResultsChannelPath, without(validResult(), "completed_at_ms"), "missing property 'completed_at_ms'"},
		{"result with unknown outcome", runtimejobs.JobResultsChannelPath, with(validResult(), "outcome", "maybe"), "'/outcome': value must be one of"},
		{"result with unknown error_code", runtimejobs.JobResultsChannelPath, with(validResult(), "error_code", "oops"), "'/error_code': value must be one of"},
		{"result with job_id off pattern", runtimejobs.JobResultsChannelPath, with(validResult(), "job_id", "job-1"), "'job-1' does not match pattern"},
		{"result with an unknown operation", runtimejobs.JobResultsChannelPath, with(validResult(), "operation", "restart"), "'/operation': value must be one of 'stop', 'start'"},
		{"dead letter with zero deliveries", runtimejobs.StopJobsDeadChannelPath, with(validDeadLetter(), "delivery_count", 0), "minimum: got 0, want 1"},
		{"dead letter without dead_reason", runtimejobs.StopJobsDeadChannelPath, without(validDeadLetter(), "dead_reason"), "missing property 'dead_reason'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := v.Validate(tt.channel, tt.payload)
			require.Error(t, err)
			var verr *jsonschema.ValidationError
			require.ErrorAs(t, err, &verr)
			assert.Contains(t, err.Error(), tt.reason)
			assert.Contains(t, err.Error(), tt.channel)
		})
	}
}

func TestUnknownChannel(t *testing.T) {
	_, v := load(t)
	err := v.Validate("runtime:pause_jobs", map[string]any{})
	require.ErrorIs(t, err, contractschema.ErrUnknownChannel)
	assert.Contains(t, err.Error(), "runtime:pause_jobs")
}

const tinyContract = `
asyncapi: 3.0.0
info: {title: t, version: 1.0.0}
channels:
  c:
    address: things
    messages:
      M: {$ref: '#/components/messages/M'}
components:
  messages:
    M:
      name: M
      payload: {$ref: '#/components/schemas/M'}
  schemas:
    M:
      type: object
      required: [when, size]
      properties:
        when: {type: string, format: date-time}
        size: {type: integer, format: int64, maximum: %s}
`

// The schema is the document's, not a copy: editing the document changes
// what validates. And formats are annotations, never assertions.
func TestSchemaComesFromTheDocument(t *testing.T) {
	payload := map[string]any{"when": "not a date", "size": 7}
	for _, tc := range []struct {
		max string
		ok  bool
	}{{"10", true}, {"5", false}} {
		doc, err := api.Parse([]byte(strings.Replace(tinyContract, "%s", tc.max, 1)))
		require.NoError(t, err)
		v, err := contractschema.New(doc)
		require.NoError(t, err)
		err = v.Validate("things", payload)
		if tc.ok {
			assert.NoError(t, err, "format date-time must not be asserted")
		} else {
			assert.ErrorContains(t, err, "maximum: got 7, want 5")
		}
	}
}

func TestInlinePayloadIsRefused(t *testing.T) {
	doc, err := api.Parse([]byte(`
asyncapi: 3.0.0
info: {title: t, version: 1.0.0}
channels:
  c:
    address: things
    messages:
      M: {name: M, payload: {type: object}}
`))
	require.NoError(t, err)
	_, err = contractschema.New(doc)
	assert.ErrorContains(t, err, "must be a $ref")
}
