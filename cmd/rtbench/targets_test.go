package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func pipe(jobsPerS, redisUS, clientUS, p99At50 float64) *pipelineReport {
	return &pipelineReport{
		Drain: drainResult{JobsPerS: jobsPerS, RedisCPUus: redisUS, ClientCPUus: clientUS},
		Latency: []latencyResult{
			{Fraction: 0.25, P99ms: 1},
			{Fraction: 0.5, P99ms: p99At50},
			{Fraction: 0.8, P99ms: 100},
		},
	}
}

func byName(ts []target) map[string]target {
	m := map[string]target{}
	for _, t := range ts {
		m[t.Name] = t
	}
	return m
}

func TestTargetsAreRatiosToTheCeilingWithTheirBounds(t *testing.T) {
	ceiling := pipe(20000, 20, 40, 4)
	inproc := pipe(16000, 24, 60, 6)    // exactly at every bound: passes
	binary := pipe(15000, 24.4, 61, 10) // below or above every bound: fails

	ts := deriveTargets(inproc, binary, ceiling)
	require.Len(t, ts, 8)
	m := byName(ts)

	for name, want := range map[string]target{
		"inproc_drain_vs_ceiling":              {Ratio: 0.8, Op: ">=", Limit: 0.8, Pass: true},
		"inproc_p99_at_50pct_vs_ceiling":       {Ratio: 1.5, Op: "<=", Limit: 1.5, Pass: true},
		"inproc_client_cpu_per_job_vs_ceiling": {Ratio: 1.5, Op: "<=", Limit: 1.5, Pass: true},
		"inproc_redis_cpu_per_job_vs_ceiling":  {Ratio: 1.2, Op: "<=", Limit: 1.2, Pass: true},
		"binary_drain_vs_ceiling":              {Ratio: 0.75, Op: ">=", Limit: 0.8, Pass: false},
		"binary_p99_at_50pct_vs_ceiling":       {Ratio: 2.5, Op: "<=", Limit: 1.5, Pass: false},
		"binary_client_cpu_per_job_vs_ceiling": {Ratio: 1.525, Op: "<=", Limit: 1.5, Pass: false},
		"binary_redis_cpu_per_job_vs_ceiling":  {Ratio: 1.22, Op: "<=", Limit: 1.2, Pass: false},
	} {
		got, ok := m[name]
		require.True(t, ok, name)
		assert.InDelta(t, want.Ratio, got.Ratio, 1e-9, name)
		assert.Equal(t, want.Op, got.Op, name)
		assert.InDelta(t, want.Limit, got.Limit, 1e-9, name)
		assert.Equal(t, want.Pass, got.Pass, name)
	}
	assert.False(t, allPass(ts))
	assert.True(t, allPass(deriveTargets(inproc, nil, ceiling)))
}

func TestTargetsReadTheP99OfTheFiftyPercentRun(t *testing.T) {
	ceiling := pipe(20000, 20, 40, 4)
	inproc := pipe(20000, 20, 40, 4)
	inproc.Latency[2].P99ms = 1000 // the 80 % run does not count
	ts := byName(deriveTargets(inproc, nil, ceiling))
	assert.InDelta(t, 1.0, ts["inproc_p99_at_50pct_vs_ceiling"].Ratio, 1e-9)
	assert.True(t, ts["inproc_p99_at_50pct_vs_ceiling"].Pass)
}

func TestTargetsLeaveOutWhatTheRunDidNotMeasure(t *testing.T) {
	assert.Empty(t, deriveTargets(pipe(1, 1, 1, 1), pipe(1, 1, 1, 1), nil), "no ceiling: nothing to hold them to")
	assert.False(t, allPass(nil), "no target evaluated is not a pass")

	noLatency := pipe(16000, 20, 40, 4)
	noLatency.Latency = nil // --skip latency, or --rates without 0.5
	ts := byName(deriveTargets(noLatency, nil, pipe(20000, 20, 40, 4)))
	assert.NotContains(t, ts, "inproc_p99_at_50pct_vs_ceiling")
	assert.Contains(t, ts, "inproc_drain_vs_ceiling")
	assert.Len(t, ts, 3)
}

func TestReportDeriveCarriesTheTargets(t *testing.T) {
	r := &report{RTInproc: pipe(10000, 20, 40, 4), Ceiling: pipe(20000, 20, 40, 4)}
	r.derive()
	require.NotEmpty(t, r.Targets)
	assert.False(t, r.TargetsPass, "inproc drains at 0.5 of the ceiling")
	assert.False(t, byName(r.Targets)["inproc_drain_vs_ceiling"].Pass)
}

func TestBinaryAgainstTheCeilingProcessIsNotATarget(t *testing.T) {
	r := &report{RTBinary: pipe(18000, 22, 45, 6), Ceiling: pipe(20000, 20, 20, 4), CeilingProcess: pipe(18000, 20, 30, 4)}
	r.derive()
	assert.False(t, r.TargetsPass, "client CPU 2.25 × the ceiling in rtbench's process")
	cp := byName(r.BinaryVsCeilingProcess)
	require.Len(t, cp, 4)
	assert.InDelta(t, 1.5, cp["binary_client_cpu_per_job_vs_ceiling_process"].Ratio, 1e-9)
	assert.True(t, cp["binary_client_cpu_per_job_vs_ceiling_process"].Pass)
	assert.InDelta(t, 1.0, cp["binary_drain_vs_ceiling_process"].Ratio, 1e-9)
	assert.InDelta(t, 1.5, cp["binary_p99_at_50pct_vs_ceiling_process"].Ratio, 1e-9)
	assert.InDelta(t, 0.9, r.Ratios["ceiling_process_vs_ceiling"], 1e-9)
	for _, tg := range r.Targets {
		assert.NotContains(t, tg.Name, "ceiling_process", "the targets stay against the ceiling in rtbench's process")
	}
}
