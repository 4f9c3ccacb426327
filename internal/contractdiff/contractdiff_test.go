package contractdiff_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/contractdiff"
)

// edit changes a contract held as a generic JSON tree.
type edit func(t *testing.T, doc map[string]any)

// contract returns the real contract with the edits applied, parsed.
func contract(t *testing.T, edits ...edit) *api.Document {
	t.Helper()
	js, err := yaml.YAMLToJSON(api.ContractYAML())
	require.NoError(t, err)
	var tree map[string]any
	require.NoError(t, json.Unmarshal(js, &tree))
	for _, e := range edits {
		e(t, tree)
	}
	out, err := json.Marshal(tree)
	require.NoError(t, err)
	doc, err := api.Parse(out)
	require.NoError(t, err)
	return doc
}

func node(t *testing.T, doc map[string]any, path ...string) map[string]any {
	t.Helper()
	cur := doc
	for _, p := range path {
		next, ok := cur[p].(map[string]any)
		require.True(t, ok, "no object at %s", strings.Join(path, "/"))
		cur = next
	}
	return cur
}

func schema(name string) []string { return []string{"components", "schemas", name} }

func props(schemaName string) []string { return append(schema(schemaName), "properties") }

func prop(schemaName, property string) []string {
	return []string{"components", "schemas", schemaName, "properties", property}
}

// set sets key on the object at path.
func set(key string, value any, path ...string) edit {
	return func(t *testing.T, doc map[string]any) { node(t, doc, path...)[key] = value }
}

// del deletes key from the object at path.
func del(key string, path ...string) edit {
	return func(t *testing.T, doc map[string]any) {
		n := node(t, doc, path...)
		require.Contains(t, n, key)
		delete(n, key)
	}
}

func makeRequired(schemaName, property string) edit {
	return func(t *testing.T, doc map[string]any) {
		s := node(t, doc, schema(schemaName)...)
		req, _ := s["required"].([]any)
		s["required"] = append(req, property)
	}
}

func unrequire(schemaName, property string) edit {
	return func(t *testing.T, doc map[string]any) {
		s := node(t, doc, schema(schemaName)...)
		req, _ := s["required"].([]any)
		i := slices.Index(req, any(property))
		require.GreaterOrEqual(t, i, 0, "%s is not required in %s", property, schemaName)
		s["required"] = slices.Delete(req, i, i+1)
	}
}

func enum(schemaName, property string, values ...any) edit {
	return set("enum", values, prop(schemaName, property)...)
}

func version(v string) edit { return set("version", v, "info") }

// key names a change compactly: rule, channel or operation key, path.
func key(c contractdiff.Change) string {
	return strings.TrimSpace(strings.Join([]string{string(c.Rule), strings.Fields(c.Where)[1], c.Path}, " "))
}

func keys(cs []contractdiff.Change) []string {
	out := []string{}
	for _, c := range cs {
		out = append(out, key(c))
	}
	return out
}

var reasons = []any{"game_finished", "lobby_cancelled", "admin_request", "idle_timeout", "platform_shutdown"}

var errorCodes = []any{"", "replay_no_op", "not_found", "invalid_job", "stop_failed", "runtime_unavailable", "internal", "start_failed"}

// withoutStartJobs removes the start-job channels and operations: the
// contract as released in 1.0.0, for the rules about new channels.
func withoutStartJobs(t *testing.T, doc map[string]any) {
	for _, ch := range []string{"startJobs", "startJobsDead"} {
		delete(node(t, doc, "channels"), ch)
	}
	for _, op := range []string{"receiveStartJob", "sendStartDeadLetter"} {
		delete(node(t, doc, "operations"), op)
	}
}

func TestRules(t *testing.T) {
	tests := []struct {
		name       string
		old        []edit // applied to the released side; none means the real contract
		edits      []edit
		breaks     []string
		compatible []string
	}{
		{name: "identical contracts"},

		// A message rtmanager receives (stopJobs: Lobby produces).
		{
			name:   "receive: new required field",
			edits:  []edit{set("priority", map[string]any{"type": "integer"}, props("RuntimeStopJob")...), makeRequired("RuntimeStopJob", "priority")},
			breaks: []string{"required-field-added stopJobs payload.priority"},
		},
		{
			name:   "receive: optional field made required",
			edits:  []edit{makeRequired("RuntimeStopJob", "requested_at_ms")},
			breaks: []string{"required-field-added stopJobs payload.requested_at_ms"},
		},
		{
			name:   "receive: required field removed",
			edits:  []edit{del("reason", props("RuntimeStopJob")...), unrequire("RuntimeStopJob", "reason")},
			breaks: []string{"required-field-removed stopJobs payload.reason"},
		},
		{
			name: "receive: required field renamed",
			edits: []edit{
				func(t *testing.T, doc map[string]any) {
					props := node(t, doc, props("RuntimeStopJob")...)
					props["stop_reason"] = props["reason"]
					delete(props, "reason")
				},
				unrequire("RuntimeStopJob", "reason"), makeRequired("RuntimeStopJob", "stop_reason"),
			},
			breaks: []string{"required-field-removed stopJobs payload.reason", "required-field-added stopJobs payload.stop_reason"},
		},
		{
			name:   "receive: type changed",
			edits:  []edit{set("type", "string", prop("RuntimeStopJob", "requested_at_ms")...)},
			breaks: []string{"type-changed stopJobs payload.requested_at_ms"},
		},
		{
			name:   "receive: enum narrowed",
			edits:  []edit{enum("RuntimeStopJob", "reason", "game_finished", "lobby_cancelled", "admin_request", "platform_shutdown")},
			breaks: []string{"enum-narrowed stopJobs payload.reason"},
		},
		{
			name:   "receive: enum added where any value was accepted",
			edits:  []edit{set("enum", []any{"g-1"}, schema("GameID")...)},
			breaks: []string{"enum-narrowed stopJobs payload.game_id", "enum-narrowed startJobs payload.game_id"},
		},
		{
			name:   "receive: pattern changed",
			edits:  []edit{set("pattern", "^[a-z0-9-]+$", schema("GameID")...)},
			breaks: []string{"constraint-tightened stopJobs payload.game_id", "constraint-tightened startJobs payload.game_id"},
		},
		{
			name:   "receive: maxLength lowered",
			edits:  []edit{set("maxLength", 64, schema("GameID")...)},
			breaks: []string{"constraint-tightened stopJobs payload.game_id", "constraint-tightened startJobs payload.game_id"},
		},
		{
			name:   "receive: minLength raised",
			edits:  []edit{set("minLength", 2, schema("GameID")...)},
			breaks: []string{"constraint-tightened stopJobs payload.game_id", "constraint-tightened startJobs payload.game_id"},
		},
		{
			name:   "receive: minimum raised",
			edits:  []edit{set("minimum", 1, prop("RuntimeStopJob", "requested_at_ms")...)},
			breaks: []string{"constraint-tightened stopJobs payload.requested_at_ms"},
		},
		{
			name:   "receive: maximum added",
			edits:  []edit{set("maximum", 1e13, prop("RuntimeStopJob", "requested_at_ms")...)},
			breaks: []string{"constraint-tightened stopJobs payload.requested_at_ms"},
		},
		{
			name:   "receive: maximum lowered",
			old:    []edit{set("maximum", 1e14, prop("RuntimeStopJob", "requested_at_ms")...)},
			edits:  []edit{set("maximum", 1e13, prop("RuntimeStopJob", "requested_at_ms")...)},
			breaks: []string{"constraint-tightened stopJobs payload.requested_at_ms"},
		},
		{
			name:   "receive: minLength and maxLength added",
			edits:  []edit{set("minLength", 1, prop("RuntimeStopJob", "reason")...), set("maxLength", 32, prop("RuntimeStopJob", "reason")...)},
			breaks: []string{"constraint-tightened stopJobs payload.reason", "constraint-tightened stopJobs payload.reason"},
		},
		{
			name:   "receive: minimum added",
			old:    []edit{del("minimum", prop("RuntimeStopJob", "requested_at_ms")...)},
			edits:  []edit{set("minimum", 0, prop("RuntimeStopJob", "requested_at_ms")...)},
			breaks: []string{"constraint-tightened stopJobs payload.requested_at_ms"},
		},
		{
			name:   "receive: format changed",
			edits:  []edit{set("format", "int32", prop("RuntimeStopJob", "requested_at_ms")...)},
			breaks: []string{"constraint-tightened stopJobs payload.requested_at_ms"},
		},
		{
			name: "receive: loosening breaks nobody",
			edits: []edit{
				enum("RuntimeStopJob", "reason", append(slices.Clone(reasons), "maintenance")...),
				unrequire("RuntimeStopJob", "reason"),
				set("maxLength", 256, schema("GameID")...),
				del("minimum", prop("RuntimeStopJob", "requested_at_ms")...),
			},
		},
		{
			name:       "receive: optional field added",
			edits:      []edit{set("note", map[string]any{"type": "string"}, props("RuntimeStopJob")...)},
			compatible: []string{"field-added stopJobs payload.note"},
		},

		// A message rtmanager sends (jobResults: Lobby consumes).
		{
			name:   "send: required field removed",
			edits:  []edit{del("container_id", props("RuntimeJobResult")...), unrequire("RuntimeJobResult", "container_id")},
			breaks: []string{"required-field-removed jobResults payload.container_id"},
		},
		{
			name:   "send: required field made optional",
			edits:  []edit{unrequire("RuntimeJobResult", "error_message")},
			breaks: []string{"required-field-removed jobResults payload.error_message"},
		},
		{
			name:   "send: type changed",
			edits:  []edit{set("type", "string", prop("RuntimeJobResult", "completed_at_ms")...)},
			breaks: []string{"type-changed jobResults payload.completed_at_ms"},
		},
		{
			name:   "send: enum widened",
			edits:  []edit{enum("RuntimeJobResult", "outcome", "success", "failure", "partial")},
			breaks: []string{"enum-widened jobResults payload.outcome"},
		},
		{
			name:   "send: enum removed",
			edits:  []edit{del("enum", prop("RuntimeJobResult", "error_code")...)},
			breaks: []string{"enum-widened jobResults payload.error_code"},
		},
		{
			name:   "send: dead letter enum widened",
			edits:  []edit{enum("RuntimeStopJobDeadLetter", "dead_reason", "undecodable", "invalid", "max_deliveries", "expired")},
			breaks: []string{"enum-widened stopJobsDead payload.dead_reason"},
		},
		{
			name: "send: narrowing and tightening break nobody",
			edits: []edit{
				enum("RuntimeJobResult", "error_code", errorCodes[:6]...),
				set("pattern", "^[0-9]{13}-[0-9]+$", prop("RuntimeJobResult", "job_id")...),
				set("maxLength", 64, prop("RuntimeJobResult", "game_id")...),
			},
		},
		{
			name: "send: new fields, required or not",
			edits: []edit{
				set("attempts", map[string]any{"type": "integer"}, props("RuntimeJobResult")...),
				makeRequired("RuntimeJobResult", "attempts"),
				set("node", map[string]any{"type": "string"}, props("RuntimeJobResult")...),
			},
			compatible: []string{"field-added jobResults payload.attempts", "field-added jobResults payload.node"},
		},
		{
			name:   "no operation: a channel is judged both ways",
			old:    []edit{del("sendJobResult", "operations")},
			edits:  []edit{enum("RuntimeJobResult", "outcome", "success")},
			breaks: []string{"enum-narrowed jobResults payload.outcome"},
		},

		// Channels, operations and x-redis-stream.
		{
			name:   "channel address changed",
			edits:  []edit{set("address", "runtime:results", "channels", "jobResults")},
			breaks: []string{"address-changed jobResults"},
		},
		{
			name:   "channel and its operation removed",
			edits:  []edit{del("jobResults", "channels"), del("sendJobResult", "operations")},
			breaks: []string{"channel-removed jobResults", "operation-removed sendJobResult"},
		},
		{
			name:   "operation removed",
			edits:  []edit{del("sendDeadLetter", "operations")},
			breaks: []string{"operation-removed sendDeadLetter"},
		},
		{
			name:   "operation action changed",
			edits:  []edit{set("action", "receive", "operations", "sendDeadLetter")},
			breaks: []string{"operation-changed sendDeadLetter"},
		},
		{
			name:   "operation channel changed",
			edits:  []edit{set("channel", map[string]any{"$ref": "#/channels/jobResults"}, "operations", "sendDeadLetter")},
			breaks: []string{"operation-changed sendDeadLetter"},
		},
		{
			name:   "message removed",
			edits:  []edit{set("messages", map[string]any{}, "channels", "stopJobsDead")},
			breaks: []string{"message-removed stopJobsDead"},
		},
		{
			name:   "stream encoding changed",
			edits:  []edit{set("encoding", "payload", "channels", "stopJobs", "x-redis-stream")},
			breaks: []string{"x-redis-stream-changed stopJobs"},
		},
		{
			name:   "stream group changed",
			edits:  []edit{set("group", "rtm", "channels", "stopJobs", "x-redis-stream")},
			breaks: []string{"x-redis-stream-changed stopJobs"},
		},
		{
			name:   "stream partition key changed",
			edits:  []edit{set("partition-key", "job_id", "channels", "jobResults", "x-redis-stream")},
			breaks: []string{"x-redis-stream-changed jobResults"},
		},
		{
			name:   "stream dead-letter dropped",
			edits:  []edit{del("dead-letter", "channels", "stopJobs", "x-redis-stream")},
			breaks: []string{"x-redis-stream-changed stopJobs"},
		},
		{
			name:   "sharded address changed",
			edits:  []edit{set("sharded-address", "runtime:{shard}:stops", "channels", "stopJobs", "x-redis-stream")},
			breaks: []string{"x-redis-stream-changed stopJobs"},
		},
		{
			name:   "sharded address removed",
			edits:  []edit{del("sharded-address", "channels", "jobResults", "x-redis-stream")},
			breaks: []string{"x-redis-stream-changed jobResults"},
		},
		{
			name:  "sharded address added breaks nobody",
			old:   []edit{del("sharded-address", "channels", "stopJobs", "x-redis-stream")},
			edits: []edit{set("sharded-address", "runtime:{shard}:stop_jobs", "channels", "stopJobs", "x-redis-stream")},
		},
		{
			name:   "shard count changed",
			edits:  []edit{set("count", 16, "x-redis-shards")},
			breaks: []string{"x-redis-shards-changed x-redis-shards"},
		},
		{
			name:   "shard tag changed",
			edits:  []edit{set("tag", "s-", "x-redis-shards")},
			breaks: []string{"x-redis-shards-changed x-redis-shards"},
		},
		{
			name:  "shards written out as their defaults breaks nobody",
			old:   []edit{del("x-redis-shards")},
			edits: []edit{set("x-redis-shards", map[string]any{"count": 1, "tag": "rt-"})},
		},
		{
			name:  "stream maxlen changed breaks nobody",
			edits: []edit{set("maxlen", 5000, "channels", "stopJobs", "x-redis-stream")},
		},
		{
			name: "channel and operation added",
			edits: []edit{
				set("pauseJobs", map[string]any{"address": "runtime:pause_jobs"}, "channels"),
				set("receivePauseJob", map[string]any{"action": "receive", "channel": map[string]any{"$ref": "#/channels/pauseJobs"}}, "operations"),
			},
			compatible: []string{"channel-added pauseJobs", "operation-added receivePauseJob"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := contractdiff.Compare(contract(t, tt.old...), contract(t, append(slices.Clone(tt.old), tt.edits...)...))
			require.NoError(t, err)
			assert.ElementsMatch(t, tt.breaks, keys(rep.Breaks()), "breaks")
			assert.ElementsMatch(t, tt.compatible, keys(rep.Compatible()), "compatible changes")
			assert.Equal(t, len(tt.breaks) == 0, rep.Passes())
			for _, c := range rep.Changes {
				assert.NotEmpty(t, c.Detail, key(c))
			}
		})
	}
}

// x-enum-new-channel: values of a sent enum that answer only jobs of a
// channel new in this contract break nobody; tied to anything else, they
// break as any widening does.
func TestEnumValuesForNewChannel(t *testing.T) {
	released := []edit{withoutStartJobs, enum("RuntimeJobResult", "operation", "stop"), enum("RuntimeJobResult", "error_code", errorCodes[:7]...)}
	added := []string{"channel-added startJobs", "channel-added startJobsDead", "operation-added receiveStartJob", "operation-added sendStartDeadLetter"}
	tests := []struct {
		name       string
		old, cur   []edit
		breaks     []string
		compatible []string
	}{
		{
			name: "1.0.0 to 1.1.0: start jobs are additive",
			old:  released,
			compatible: append([]string{"enum-value-for-new-channel jobResults payload.operation",
				"enum-value-for-new-channel jobResults payload.error_code"}, added...),
		},
		{
			name:       "without the marker the values break",
			old:        released,
			cur:        []edit{del("x-enum-new-channel", prop("RuntimeJobResult", "operation")...)},
			breaks:     []string{"enum-widened jobResults payload.operation"},
			compatible: append([]string{"enum-value-for-new-channel jobResults payload.error_code"}, added...),
		},
		{
			name:   "a value tied to a channel that already existed",
			cur:    []edit{enum("RuntimeJobResult", "operation", "stop", "start", "pause"), set("x-enum-new-channel", map[string]any{"pause": "stopJobs"}, prop("RuntimeJobResult", "operation")...)},
			breaks: []string{"enum-widened jobResults payload.operation"},
		},
		{
			name:   "a value tied to an unknown channel",
			cur:    []edit{enum("RuntimeJobResult", "operation", "stop", "start", "pause"), set("x-enum-new-channel", map[string]any{"pause": "pauseJobs"}, prop("RuntimeJobResult", "operation")...)},
			breaks: []string{"enum-widened jobResults payload.operation"},
		},
		{
			name:       "a value tied to a new channel rtmanager only sends on",
			old:        released,
			cur:        []edit{set("x-enum-new-channel", map[string]any{"start": "startJobsDead"}, prop("RuntimeJobResult", "operation")...)},
			breaks:     []string{"enum-widened jobResults payload.operation"},
			compatible: append([]string{"enum-value-for-new-channel jobResults payload.error_code"}, added...),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := contractdiff.Compare(contract(t, tt.old...), contract(t, tt.cur...))
			require.NoError(t, err)
			assert.ElementsMatch(t, tt.breaks, keys(rep.Breaks()), "breaks")
			assert.ElementsMatch(t, tt.compatible, keys(rep.Compatible()), "compatible changes")
		})
	}
}

// A break is located by channel, its direction and the property path, even
// when the edit is in a schema reached through a $ref (GameID).
func TestBreakIsLocated(t *testing.T) {
	rep, err := contractdiff.Compare(contract(t), contract(t, set("maxLength", 64, schema("GameID")...)))
	require.NoError(t, err)
	require.Len(t, rep.Breaks(), 2, "stop and start jobs share GameID")
	b := rep.Breaks()[1]
	assert.Equal(t, "channel stopJobs (runtime:stop_jobs, rtmanager receives)", b.Where)
	assert.Equal(t, "channel stopJobs (runtime:stop_jobs, rtmanager receives) payload.game_id: constraint-tightened: maxLength lowered from 128 to 64", b.String())
}

func TestMajorVersionBump(t *testing.T) {
	narrowed := enum("RuntimeStopJob", "reason", reasons[:4]...)
	for _, tt := range []struct {
		version string
		passes  bool
	}{
		{"1.1.1", false},
		{"1.4.0", false},
		{"2.0.0", true},
		{"v3", true},
	} {
		t.Run(tt.version, func(t *testing.T) {
			rep, err := contractdiff.Compare(contract(t), contract(t, narrowed, version(tt.version)))
			require.NoError(t, err)
			require.Len(t, rep.Breaks(), 1)
			assert.Equal(t, tt.passes, rep.MajorBumped)
			assert.Equal(t, tt.passes, rep.Passes())
			assert.Equal(t, contract(t).Version, rep.OldVersion, "the released side here is the current contract")
			assert.Equal(t, tt.version, rep.NewVersion)
		})
	}
}

func TestRefusesWhatItCannotJudge(t *testing.T) {
	_, err := contractdiff.Compare(contract(t), contract(t, version("next")))
	require.ErrorContains(t, err, `new info.version: "next" is not a semantic version`)

	_, err = contractdiff.Compare(contract(t, set("action", "publish", "operations", "sendDeadLetter")), contract(t))
	require.ErrorContains(t, err, `old: operation sendDeadLetter: unknown action "publish"`)

	_, err = contractdiff.Compare(contract(t), contract(t, set("channel", map[string]any{"$ref": "#/channels/nowhere"}, "operations", "sendDeadLetter")))
	assert.ErrorContains(t, err, `new: operation sendDeadLetter: channel "nowhere" does not exist`)
}
