package main

import (
	"os"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLatencyCSVIsInSendOrder(t *testing.T) {
	dir := t.TempDir()
	path, err := writeLatencyCSV(dir, "redis_ceiling", 0.5, []latSample{{sentS: 2.5, ms: 7}, {sentS: 1.25, ms: 3.5}})
	require.NoError(t, err)
	assert.Equal(t, dir+"/redis_ceiling-50.csv", path)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "sent_s,latency_ms\n1.2500,3.500\n2.5000,7.000\n", string(b))
}

func TestGCSharesCountJobsInFlightAtACollectionsEnd(t *testing.T) {
	// 100 jobs sent 10 ms apart, 1 ms each, but those sent at 0.49, 0.50
	// and 0.51 s take 30 ms, across a collection that ended at 0.52 s
	// (as is the job sent at 0.52 s, for its 1 ms); another collection ends
	// between jobs, at 0.705 s, and hits none.
	var samples []latSample
	for i := 0; i < 100; i++ {
		s := latSample{sentS: float64(i) / 100, ms: 1}
		if i >= 49 && i <= 51 {
			s.ms = 30
		}
		samples = append(samples, s)
	}
	lat := make([]float64, len(samples))
	for i, s := range samples {
		lat[i] = s.ms
	}
	sort.Float64s(lat)
	g := gcShares(samples, quantile(lat, 0.99), []float64{0.52, 0.705, 5})
	require.NotNil(t, g)
	assert.Equal(t, 2, g.Cycles, "the one at 5 s is after the run")
	assert.InDelta(t, 0.04, g.AllHit, 1e-9)
	assert.InDelta(t, 1.0, g.TailHit, 1e-9, "the three slow jobs are the p99 tail, all in flight at 0.52 s")
	assert.Nil(t, gcShares(nil, 0, []float64{1}))
}
