package conformance_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/contractschema"
	"galaxy/rtmanager/internal/redisstream"
)

type fixture struct {
	Name         string            `json:"name"`
	Fields       map[string]string `json:"fields"`
	FieldsBase64 map[string]string `json:"fields_base64"`
	BigField     string            `json:"big_field"`
	ExtraFields  int               `json:"extra_fields"`
	Reason       string            `json:"reason"`
}

type fixtureFile struct {
	Channel string    `json:"channel"`
	Accept  []fixture `json:"accept"`
	Refuse  []fixture `json:"refuse"`
}

func (f fixture) values(t *testing.T) map[string]any {
	v := map[string]any{}
	for k, s := range f.Fields {
		v[k] = s
	}
	for k, s := range f.FieldsBase64 {
		b, err := base64.StdEncoding.DecodeString(s)
		require.NoError(t, err)
		v[k] = string(b)
	}
	if f.BigField != "" {
		v[f.BigField] = strings.Repeat("x", redisstream.DefaultMaxFieldSize+1)
	}
	for i := 0; i < f.ExtraFields; i++ {
		v[fmt.Sprintf("extra_%03d", i)] = "v"
	}
	return v
}

// typed decodes a payload into the generated type of its channel.
func typed(addr string, payload []byte) (any, error) {
	switch addr {
	case runtimejobs.StopJobsChannelPath:
		var m runtimejobs.RuntimeStopJobMessage
		return m.Payload, json.Unmarshal(payload, &m.Payload)
	case runtimejobs.JobResultsChannelPath:
		var m runtimejobs.RuntimeJobResultMessage
		return m.Payload, json.Unmarshal(payload, &m.Payload)
	case runtimejobs.StopJobsDeadChannelPath:
		var m runtimejobs.RuntimeStopJobDeadLetterMessage
		return m.Payload, json.Unmarshal(payload, &m.Payload)
	case runtimejobs.StartJobsChannelPath:
		var m runtimejobs.RuntimeStartJobMessage
		return m.Payload, json.Unmarshal(payload, &m.Payload)
	case runtimejobs.StartJobsDeadChannelPath:
		var m runtimejobs.RuntimeStartJobDeadLetterMessage
		return m.Payload, json.Unmarshal(payload, &m.Payload)
	case runtimejobs.RuntimeEventsChannelPath:
		var m runtimejobs.RuntimeEventMessage
		return m.Payload, json.Unmarshal(payload, &m.Payload)
	}
	return nil, fmt.Errorf("no generated type for %s", addr)
}

// check runs one field map through what a receiver runs: the codec, the
// generated type and the contract's schema. Fields the schema does not name
// are kept for the schema check, as the dead letter's originals are.
func check(t *testing.T, doc *api.Document, v *contractschema.Validator, addr string, values map[string]any) error {
	ch, ok := doc.ChannelByAddress(addr)
	require.True(t, ok, addr)
	payload, err := redisstream.FieldsToPayload(ch, values)
	if err != nil {
		return err
	}
	if _, err := typed(addr, payload); err != nil {
		return err
	}
	var m map[string]any
	require.NoError(t, json.Unmarshal(payload, &m))
	if addr == runtimejobs.StopJobsDeadChannelPath || addr == runtimejobs.StartJobsDeadChannelPath {
		for k, val := range values {
			if _, ok := m[k]; !ok {
				m[k] = val
			}
		}
	}
	return v.Validate(addr, m)
}

func TestWireFixtures(t *testing.T) {
	doc, err := api.Load()
	require.NoError(t, err)
	v, err := contractschema.New(doc)
	require.NoError(t, err)
	files, err := filepath.Glob("../../testdata/contract/*.json")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	covered := map[string]bool{}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		require.NoError(t, err)
		var ff fixtureFile
		require.NoError(t, json.Unmarshal(raw, &ff), file)
		covered[ff.Channel] = true
		for _, f := range ff.Accept {
			t.Run(filepath.Base(file)+"/accept/"+f.Name, func(t *testing.T) {
				assert.NoError(t, check(t, doc, v, ff.Channel, f.values(t)))
			})
		}
		for _, f := range ff.Refuse {
			t.Run(filepath.Base(file)+"/refuse/"+f.Name, func(t *testing.T) {
				require.NotEmpty(t, f.Reason, "a refusal fixture names its reason")
				err := check(t, doc, v, ff.Channel, f.values(t))
				require.Error(t, err)
				assert.Contains(t, err.Error(), f.Reason)
			})
		}
	}
	for _, ch := range doc.Channels {
		assert.True(t, covered[ch.Address], "no fixtures for channel %s", ch.Address)
	}
}

// Every example of the contract, written as stream fields by the codec, is
// read back identically, fits the generated type and passes the schema.
func TestExamplesThroughCodecAndSchema(t *testing.T) {
	doc, err := api.Load()
	require.NoError(t, err)
	v, err := contractschema.New(doc)
	require.NoError(t, err)
	n := 0
	for _, ch := range doc.Channels {
		for _, ex := range ch.Message.Examples {
			in, err := json.Marshal(ex.Payload)
			require.NoError(t, err)
			fields, err := redisstream.PayloadToFields(ch, in)
			require.NoError(t, err, "%s/%s", ch.Address, ex.Name)
			values := map[string]any{}
			for i := 0; i < len(fields); i += 2 {
				values[fields[i]] = fields[i+1]
			}
			for _, f := range fields {
				assert.False(t, strings.HasPrefix(f, "{"), "fields are plain values, not JSON")
			}
			require.NoError(t, check(t, doc, v, ch.Address, values), "%s/%s", ch.Address, ex.Name)
			out, err := redisstream.FieldsToPayload(ch, values)
			require.NoError(t, err)
			var back map[string]any
			require.NoError(t, json.Unmarshal(out, &back))
			want := map[string]any{}
			for k, val := range ex.Payload {
				if ch.Message.Payload.Properties[k] != nil {
					want[k] = val
				}
			}
			assert.Equal(t, want, back, "%s/%s", ch.Address, ex.Name)
			n++
		}
	}
	assert.GreaterOrEqual(t, n, 6)
}
