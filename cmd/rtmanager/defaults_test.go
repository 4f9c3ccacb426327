package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/startruntime"
	"galaxy/rtmanager/internal/stopruntime"
)

func noEnv(string) string { return "" }

// Without flags, rtmanager hands the broker exactly the broker's own
// defaults: a flag default written apart from the broker's would drift.
func TestBrokerFlagDefaultsAreTheBrokers(t *testing.T) {
	cfg, err := parseConfig(nil, noEnv, io.Discard)
	require.NoError(t, err)
	o := brokerOptions(cfg, "rtmanager", nil)
	assert.Equal(t, redisstream.DefaultStartID, o.StartID)
	assert.Equal(t, redisstream.DefaultMaxDeliveries, o.MaxDeliveries)
	assert.Equal(t, redisstream.DefaultClaimIdle, o.ClaimIdle)
	assert.Equal(t, redisstream.DefaultRetryBackoff, o.RetryBackoff)
	assert.Equal(t, redisstream.DefaultMaxContinuing, o.MaxContinuing)
	assert.Zero(t, o.Prefetch, "the broker derives the prefetch")
	require.NoError(t, o.Validate())

	help := helpText(t)
	assert.Contains(t, help, "2×"+strconv.Itoa(redisstream.DefaultReadCount)+" + --workers", "--prefetch names the broker's read count")
	assert.Contains(t, help, "up to "+redisstream.DefaultMaxRetryBackoff.String(), "--retry-backoff names the broker's cap")
	assert.Equal(t, redisstream.DefaultConsumerForm, flagDefaults(t)["consumer"])
}

// The stop and start flags default to their services' defaults, and the
// takeover times rtmanager sets outlast two steps of either.
func TestServiceFlagDefaultsAreTheServices(t *testing.T) {
	cfg, err := parseConfig(nil, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, stopruntime.DefaultStopGrace, cfg.StopGrace)
	assert.Equal(t, startruntime.DefaultStartTimeout, cfg.StartTimeout)
	assert.Equal(t, stopruntime.DefaultTakeoverAfter, stopruntime.TakeoverFor(cfg.StopGrace),
		"docs/persistence.md: 2 minutes with the default grace")
	assert.Equal(t, 140*time.Second, stopruntime.TakeoverFor(cfg.StartTimeout+cfg.StopGrace),
		"docs/persistence.md: 2 min 20 s for a start with the defaults")
}

// docs/operations.md names every flag, and a default it writes as a value
// (`…`) is the flag's.
func TestOperationsDocNamesTheFlagDefaults(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	require.NoError(t, err)
	// | `--flag` | default | meaning |, or | `--a`, `--b` | a's, b's | … |
	row := regexp.MustCompile("(?m)^\\| (`--[a-z-]+`(?:, `--[a-z-]+`)*) \\| ([^|]*) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		names := strings.Split(m[1], ", ")
		defs := strings.Split(strings.TrimSpace(m[2]), ", ")
		for i, n := range names {
			def := ""
			if len(defs) == len(names) {
				def = defs[i]
			}
			documented[strings.Trim(n, "`-")] = def
		}
	}
	for name, def := range flagDefaults(t) {
		written, ok := documented[name]
		if !assert.True(t, ok, "--%s is missing from the flag table of docs/operations.md", name) {
			continue
		}
		if v, isValue := strings.CutPrefix(written, "`"); isValue && strings.HasSuffix(v, "`") {
			assert.Equal(t, def, strings.TrimSuffix(v, "`"), "--%s default in docs/operations.md", name)
		}
	}
}

func helpText(t *testing.T) string {
	t.Helper()
	var help bytes.Buffer
	_, err := parseConfig([]string{"--help"}, noEnv, &help)
	require.ErrorIs(t, err, flag.ErrHelp)
	return help.String()
}

// flagDefaults are rtmanager's flags and their defaults as --help prints
// them ("" when it prints none).
func flagDefaults(t *testing.T) map[string]string {
	t.Helper()
	name := regexp.MustCompile(`^  --([a-z-]+) \(`)
	def := regexp.MustCompile(`\(default "(.*)"\)$`)
	out := map[string]string{}
	var cur string
	for _, line := range strings.Split(helpText(t), "\n") {
		if m := name.FindStringSubmatch(line); m != nil {
			cur = m[1]
			out[cur] = ""
		} else if m := def.FindStringSubmatch(line); m != nil && cur != "" {
			out[cur] = m[1]
		}
	}
	require.NotEmpty(t, out)
	return out
}
