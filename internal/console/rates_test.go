package console

import (
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/metrics"
)

func TestRatesComeFromTheProcesssCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	r := &rates{gather: reg}
	t0 := time.Unix(1_700_000_000, 0)
	assert.False(t, r.view("stop", runtimejobs.StopJobsChannelPath).Known)

	r.take(t0)
	// 120 stop results and 2 dead letters in the first minute; 30 start
	// results that the stop stream must not count; then 3 dead letters.
	for i := 0; i < 120; i++ {
		m.OperationResult("stop", "success", "", time.Millisecond)
	}
	for i := 0; i < 30; i++ {
		m.OperationResult("start", "success", "", time.Millisecond)
	}
	m.DeadLettered(runtimejobs.StopJobsChannelPath, "invalid")
	m.DeadLettered(runtimejobs.StopJobsChannelPath, "max_deliveries")
	for i := 1; i <= 12; i++ {
		r.take(t0.Add(time.Duration(i) * 5 * time.Second))
	}
	for i := 0; i < 3; i++ {
		m.DeadLettered(runtimejobs.StopJobsChannelPath, "invalid")
	}
	for i := 13; i <= 24; i++ {
		r.take(t0.Add(time.Duration(i) * 5 * time.Second))
	}

	v := r.view("stop", runtimejobs.StopJobsChannelPath)
	require.True(t, v.Known)
	// The last minute had no result.
	assert.InDelta(t, 0, v.ResultsPerSec, 1e-9)
	assert.Equal(t, []int64{3, 2}, v.DeadPerMinute)
	assert.Equal(t, 2*time.Minute, v.Window)

	// Over the first minute alone: 2 stop results a second.
	r2 := &rates{gather: reg}
	r2.ring = r.ring[:13]
	assert.InDelta(t, 2, r2.view("stop", runtimejobs.StopJobsChannelPath).ResultsPerSec, 1e-9)
	assert.InDelta(t, 0.5, r2.view("start", runtimejobs.StartJobsChannelPath).ResultsPerSec, 1e-9)

	// The ring keeps ten minutes.
	for i := 25; i < 400; i++ {
		r.take(t0.Add(time.Duration(i) * 5 * time.Second))
	}
	assert.Len(t, r.ring, ringSize)
}

func TestOverviewShowsRates(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	f := newFixture(t, Options{Metrics: reg})
	code, body := f.get("/")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `<td class="rate">not measured yet</td>`)

	t0 := time.Now()
	f.c.rates.mu.Lock()
	f.c.rates.ring = nil
	f.c.rates.mu.Unlock()
	f.c.rates.take(t0)
	for i := 0; i < 50; i++ {
		m.OperationResult("stop", "success", "", time.Millisecond)
	}
	f.c.rates.take(t0.Add(10 * time.Second))
	_, body = f.get("/")
	assert.Contains(t, body, `<td class="rate">5.00</td>`)
}
