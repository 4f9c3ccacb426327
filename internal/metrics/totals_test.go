package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/metrics"
)

// Totals gathers the result and dead-letter counters alone (no collector
// that reads Redis), with the values of the process's registry.
func TestTotalsGathersTheTwoCountersAlone(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.OperationResult("stop", "success", "", time.Millisecond)
	m.DeadLettered("runtime:stop_jobs", "invalid")
	m.Received("runtime:stop_jobs", 3)

	mfs, err := m.Totals().Gather()
	require.NoError(t, err)
	names := map[string]float64{}
	for _, mf := range mfs {
		for _, x := range mf.GetMetric() {
			names[mf.GetName()] += x.GetCounter().GetValue()
		}
	}
	assert.Equal(t, map[string]float64{"rtmanager_job_results_total": 1, "rtmanager_dead_letters_total": 1}, names)
}
