package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEntryLatenciesAreResultIDLessJobIDInMilliseconds(t *testing.T) {
	id := func(s string) entryID {
		e, ok := parseEntryID(s)
		require.True(t, ok, s)
		return e
	}
	now := time.Second
	sent := map[entryID]time.Duration{id("1000-0"): now, id("1000-1"): now, id("1002-5"): now, id("1003-0"): now}
	results := map[entryID]entryID{
		id("1000-0"): id("1003-0"),
		id("1000-1"): id("1001-7"),
		id("1002-5"): id("1010-0"),
		// "1003-0" has no result yet: it is left out, not counted as 0.
		id("999-0"): id("1000-0"), // a result for a job this run did not send
	}
	assert.Equal(t, []float64{1, 3, 8}, entryLatencies(sent, results))
}

func TestParseEntryIDTakesOnlyEntryIDs(t *testing.T) {
	e, ok := parseEntryID("1700000000123-42")
	require.True(t, ok)
	assert.Equal(t, entryID{MS: 1700000000123, Seq: 42}, e)
	for _, bad := range []any{"", "17", "a-1", "1-b", "1-2-3", 17, nil} {
		_, ok := parseEntryID(bad)
		assert.False(t, ok, "%v", bad)
	}
}

func TestQuantileIsNearestRank(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	assert.InDelta(t, 5.0, quantile(v, 0.5), 1e-9)
	assert.InDelta(t, 10.0, quantile(v, 0.99), 1e-9)
	assert.InDelta(t, 1.0, quantile(v, 0.01), 1e-9)
}

// The binary's acknowledgements are summed over their labels; its
// collections are the Go collector's count (the summary's quantiles and
// sum are other lines).
func TestParseProcMetricsReadsAcksAndCollections(t *testing.T) {
	text := `# HELP go_gc_duration_seconds A summary of the wall-time pause.
# TYPE go_gc_duration_seconds summary
go_gc_duration_seconds{quantile="0.5"} 4.1e-05
go_gc_duration_seconds_sum 0.0123
go_gc_duration_seconds_count 74
rtmanager_acks_total{channel="runtime:stop_jobs"} 19000
rtmanager_acks_total{channel="runtime:start_jobs"} 1000
rtmanager_acks_totally_other 5
`
	m, err := parseProcMetrics(strings.NewReader(text))
	require.NoError(t, err)
	assert.Equal(t, procMetrics{acks: 20000, gcs: 74}, m)
}

// TestLiveCPUCountsRunningChildren: a latency run ends while the binary's
// processes still run, when getrusage does not count them yet; liveCPU reads
// them from /proc.
func TestLiveCPUCountsRunningChildren(t *testing.T) {
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	pids := []int{cmd.Process.Pid}
	before, self0 := liveCPU(pids), liveCPU(nil)
	// The child spins; wait until /proc shows it used a few ticks.
	require.Eventually(t, func() bool { return liveCPU(pids)-before >= 0.05 }, 10*time.Second, 20*time.Millisecond)
	childGrew := (liveCPU(pids) - before) - (liveCPU(nil) - self0)
	assert.Greater(t, childGrew, 0.03, "the running child's CPU is counted")
}
