package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
)

// variant writes the real contract with each old→new replacement applied.
func variant(t *testing.T, replacements ...string) string {
	t.Helper()
	s := string(api.ContractYAML())
	for i := 0; i < len(replacements); i += 2 {
		require.Contains(t, s, replacements[i])
		s = strings.Replace(s, replacements[i], replacements[i+1], 1)
	}
	p := filepath.Join(t.TempDir(), "contract.yaml")
	require.NoError(t, os.WriteFile(p, []byte(s), 0o600))
	return p
}

func gate(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

const idleTimeout = "            - idle_timeout\n"

// v1 is the contract's own info.version line; a minor bump of it (v1Minor)
// must not accept a break.
var v1, v1Minor = versionLines()

func versionLines() (string, string) {
	doc, err := api.Load()
	if err != nil {
		panic(err)
	}
	var major, minor int
	if _, err := fmt.Sscanf(doc.Version, "%d.%d", &major, &minor); err != nil {
		panic(err)
	}
	return "  version: " + doc.Version + "\n", fmt.Sprintf("  version: %d.%d.0\n", major, minor+1)
}

// The repository's own pair: the contract against its last release.
func TestReleasedContractIsCompatible(t *testing.T) {
	code, out, errOut := gate(t, "--old", "../../api/released/runtime-jobs-asyncapi.yaml", "--new", "../../api/runtime-jobs-asyncapi.yaml")
	assert.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "additive: ")
	assert.Contains(t, out, "no wire-breaking change")
}

// 1.0.0 to 1.1.0 added start jobs, 1.2.0 runtime events: the gate accepts
// both and says they are additive, listing the result values tied to the
// new channel.
func TestStartJobsAreAdditive(t *testing.T) {
	code, out, errOut := gate(t, "--old", "testdata/runtime-jobs-asyncapi-1.0.0.yaml", "--new", variant(t))
	assert.Equal(t, exitOK, code, errOut)
	assert.Contains(t, out, "additive: 8 compatible change(s), no wire-breaking change")
	assert.Contains(t, out, `channel runtimeEvents: channel-added: new channel at "runtime:events"`)
	assert.Contains(t, out, `payload.operation: enum-value-for-new-channel: new values "start" answer only jobs of the new channel startJobs`)
	assert.Contains(t, out, `payload.error_code: enum-value-for-new-channel: new values "start_failed" answer only jobs of the new channel startJobs`)

	// Without the x-enum-new-channel markers the same values break.
	cur := variant(t, "          x-enum-new-channel:\n            start: startJobs\n", "")
	code, _, errOut = gate(t, "--old", "testdata/runtime-jobs-asyncapi-1.0.0.yaml", "--new", cur)
	assert.Equal(t, exitBreaks, code)
	assert.Contains(t, errOut, `payload.operation: enum-widened: new values a released Lobby does not know: "start"`)
}

func TestNoChangeSaysSo(t *testing.T) {
	code, out, _ := gate(t, "--old", variant(t), "--new", variant(t))
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, ": no wire-breaking change\n")
	assert.NotContains(t, out, "additive")
}

func TestBreakFailsWithReadableList(t *testing.T) {
	old := variant(t)
	cur := variant(t, idleTimeout, "", "- platform_shutdown\n        requested_at_ms:\n          type: integer\n          format: int64\n          minimum: 0\n", "- platform_shutdown\n        requested_at_ms:\n          type: integer\n          format: int64\n          minimum: 1\n")
	code, _, errOut := gate(t, "--old", old, "--new", cur)
	assert.Equal(t, exitBreaks, code)
	assert.Contains(t, errOut, "2 wire-breaking change(s):")
	assert.Contains(t, errOut, `  - channel stopJobs (runtime:stop_jobs, rtmanager receives) payload.reason: enum-narrowed: no longer accepted: "idle_timeout"`)
	assert.Contains(t, errOut, `  - channel stopJobs (runtime:stop_jobs, rtmanager receives) payload.requested_at_ms: constraint-tightened: minimum raised from 0 to 1`)
	assert.Contains(t, errOut, "raising the major of info.version (now "+strings.TrimSpace(strings.TrimPrefix(v1, "  version: "))+")")
}

func TestMajorBumpAcceptsBreak(t *testing.T) {
	cur := variant(t, idleTimeout, "", v1, "  version: 2.0.0\n")
	code, out, _ := gate(t, "--old", variant(t), "--new", cur)
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "1 wire-breaking change(s) accepted by major version bump:")
	assert.Contains(t, out, "enum-narrowed")
}

func TestMinorBumpDoesNotAcceptBreak(t *testing.T) {
	cur := variant(t, idleTimeout, "", v1, v1Minor)
	code, _, errOut := gate(t, "--old", variant(t), "--new", cur)
	assert.Equal(t, exitBreaks, code)
	assert.Contains(t, errOut, "enum-narrowed")
}

func TestCompatibleChangesArePrinted(t *testing.T) {
	cur := variant(t, idleTimeout, idleTimeout+"            - maintenance\n",
		"- platform_shutdown\n        requested_at_ms:\n", "- platform_shutdown\n        note:\n          type: string\n        requested_at_ms:\n")
	code, out, _ := gate(t, "--old", variant(t), "--new", cur)
	assert.Equal(t, exitOK, code)
	assert.Contains(t, out, "compatible: channel stopJobs (runtime:stop_jobs, rtmanager receives) payload.note: field-added: new optional field")
}

func TestUsageErrors(t *testing.T) {
	code, _, errOut := gate(t, "--old", filepath.Join(t.TempDir(), "missing.yaml"), "--new", variant(t))
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "read contract")

	code, _, errOut = gate(t, "--old", variant(t), "--new", variant(t, v1, "  version: next\n"))
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "not a semantic version")

	code, _, _ = gate(t, "--bogus")
	assert.Equal(t, exitUsage, code)
}
