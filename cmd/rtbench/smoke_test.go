package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSmokeRunsEveryPipeline runs `rtbench --smoke` (issue 18, item 4): each
// pipeline, the old design and the ceiling included, and the mass stop with
// real processes, at tiny sizes, so none of them drifts from the code it
// measures or re-implements without a test failing. The figures mean
// nothing at these sizes; the run's own checks (exactly one result per
// job, …) and the report's shape are what is asserted.
func TestSmokeRunsEveryPipeline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds rtmanager and runs every pipeline (about 20 s); skipped under -short")
	}
	csvDir := t.TempDir()
	cfg, err := parseFlags([]string{"--smoke", "--mass-settle", "300ms", "--latency-csv", csvDir}, io.Discard)
	require.NoError(t, err)
	cfg.ModuleDir = "../.." // go build ./cmd/rtmanager runs from the module root
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var out, progress bytes.Buffer
	require.NoError(t, run(ctx, cfg, &out, &progress), "progress:\n%s", progress.String())

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var rep report
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &rep), "the last line is the JSON report")
	assert.True(t, rep.Config.Smoke)
	for name, p := range map[string]*pipelineReport{"inproc": rep.RTInproc, "binary": rep.RTBinary, "old": rep.Old, "ceiling": rep.Ceiling, "ceiling-process": rep.CeilingProcess} {
		require.NotNil(t, p, name)
		assert.Equal(t, int64(cfg.Jobs), p.Drain.Results, name)
		assert.Positive(t, p.Drain.JobsPerS, name)
		require.Len(t, p.Latency, 1, name)
		assert.Zero(t, p.Latency[0].Missing, name)
		l := p.Latency[0]
		assert.Equal(t, int(math.Round(l.OfferedPerS*0.1)), l.WarmupJobs, "%s: --rate-warmup 100ms at the run's rate", name)
		assert.Positive(t, l.WarmupP99ms, name)
		assert.Equal(t, int(math.Round(l.OfferedPerS*0.3)), l.Jobs, "%s: the warm-up's jobs are not measured", name)
		assert.Positive(t, l.ClientCPUus, "%s: client CPU over the latency run", name)
		assert.Positive(t, l.RedisCPUus, "%s: Redis CPU over the latency run", name)
	}
	assert.Len(t, rep.RTBinary.Drain.GCs, 1, "the binary's collections, from its /metrics")
	csvs, err := filepath.Glob(filepath.Join(csvDir, "*-50.csv"))
	require.NoError(t, err)
	assert.Len(t, csvs, 5, "--latency-csv: one file per pipeline's latency run")
	for _, path := range csvs {
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		assert.Equal(t, "sent_s,latency_ms", lines[0], path)
		assert.Greater(t, len(lines), 1, path)
	}
	assert.Len(t, rep.WorkerScaling, 2)
	assert.Len(t, rep.Processes, 2)
	assert.Len(t, rep.Targets, 8, "four targets for each of the two rtmanager pipelines")
	assert.Len(t, rep.BinaryVsCeilingProcess, 4, "the binary against the ceiling in its own process")
	assert.Contains(t, out.String(), "against the ceiling in a process of its own")
	f := rep.GeneratedFloor
	require.NotNil(t, f, "the generated controllers' floor runs by default")
	assert.Equal(t, cfg.Jobs, f.Jobs)
	assert.Positive(t, f.ClientCPUus)
	assert.Positive(t, f.VsCeiling, "set beside the ceiling of the same run")
	assert.Contains(t, out.String(), "generated controllers alone")

	require.NotNil(t, rep.Cluster, "the cluster comparison runs by default")
	require.Len(t, rep.Cluster.Runs, 3, "single, cluster S = 1, cluster S = 16")
	for _, r := range rep.Cluster.Runs {
		assert.Equal(t, int64(cfg.Jobs), r.Drain.Results, r.Key)
	}
	assert.Contains(t, out.String(), "COMPUTED, not measured")

	m := rep.Mass
	require.NotNil(t, m)
	assert.Equal(t, 50, m.Games)
	assert.Equal(t, 51, m.Results, "the 50 games and the fast one")
	assert.True(t, m.ExactlyOnce)
	assert.GreaterOrEqual(t, m.SettleS, 0.3, "--mass-settle: the jobs are written that long after rtmanager is ready")
	assert.Contains(t, out.String(), "after rtmanager was ready (--mass-settle)")
	assert.GreaterOrEqual(t, m.AllResultsS, 0.2-0.001, "no engine exits before its delay")
	assert.Positive(t, m.PeakRSSMiB)
	assert.GreaterOrEqual(t, m.MeasuredFloorS, 0.2-0.001, "the floor's engines do not exit before their delay either")
	assert.Contains(t, out.String(), "measured floor (--mass-floor): 50 fresh engines")
	assert.Contains(t, out.String(), "mass stop: 50 games")
	assert.Contains(t, out.String(), "targets, against the Redis ceiling of this run:")
}
