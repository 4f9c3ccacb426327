package console

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Rates come from the process's own Prometheus counters, sampled into a
// small ring in memory: no Prometheus server is queried, and the console
// shows the last minutes of this process only.

const (
	sampleEvery = 5 * time.Second
	// ringSize samples cover ten minutes.
	ringSize = 121

	metricResults = "rtmanager_job_results_total"
	metricDead    = "rtmanager_dead_letters_total"
)

// sample is the counters' totals at one time: results by operation label,
// dead letters by stream label.
type sample struct {
	at      time.Time
	results map[string]float64
	dead    map[string]float64
}

// rates is the ring of samples; safe for concurrent use.
type rates struct {
	gather prometheus.Gatherer

	mu   sync.Mutex
	ring []sample // oldest first, at most ringSize
}

// take reads the counters now and appends a sample.
func (r *rates) take(now time.Time) {
	if r.gather == nil {
		return
	}
	s := sample{at: now, results: map[string]float64{}, dead: map[string]float64{}}
	mfs, err := r.gather.Gather()
	if err != nil && len(mfs) == 0 {
		return
	}
	for _, mf := range mfs {
		var into map[string]float64
		var label string
		switch mf.GetName() {
		case metricResults:
			into, label = s.results, "operation"
		case metricDead:
			into, label = s.dead, "stream"
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label {
					into[lp.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	r.mu.Lock()
	r.ring = append(r.ring, s)
	if len(r.ring) > ringSize {
		r.ring = append(r.ring[:0], r.ring[len(r.ring)-ringSize:]...)
	}
	r.mu.Unlock()
}

// rateView is what the overview shows for one job stream.
type rateView struct {
	// Known is false until two samples a minute apart (or the first two
	// samples) exist.
	Known bool
	// ResultsPerSec is the results answered per second over the last minute.
	ResultsPerSec float64
	// DeadPerMinute are dead letters per minute, the newest minute first,
	// over what the ring holds (up to ten minutes).
	DeadPerMinute []int64
	// Window is how far back the samples reach.
	Window time.Duration
}

// view computes the rates of one job stream.
func (r *rates) view(operation, stream string) rateView {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := len(r.ring)
	if n < 2 {
		return rateView{}
	}
	last := r.ring[n-1]
	// The sample closest to a minute before the last one (or the oldest).
	i := n - 2
	for i > 0 && last.at.Sub(r.ring[i].at) < time.Minute {
		i--
	}
	first := r.ring[i]
	v := rateView{Known: true, Window: last.at.Sub(r.ring[0].at)}
	if d := last.at.Sub(first.at).Seconds(); d > 0 {
		v.ResultsPerSec = (last.results[operation] - first.results[operation]) / d
	}
	// Dead letters per whole minute, walking back from the last sample.
	end := n - 1
	for end > 0 {
		start := end
		for start > 0 && r.ring[end].at.Sub(r.ring[start-1].at) <= time.Minute {
			start--
		}
		if start == end {
			break
		}
		v.DeadPerMinute = append(v.DeadPerMinute, int64(r.ring[end].dead[stream]-r.ring[start].dead[stream]))
		end = start
	}
	return v
}
