package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// watchMetrics are the runtime watch's (runtimewatch.Metrics).
type watchMetrics struct {
	events        *prometheus.CounterVec
	probeFailures prometheus.Counter
	reconcile     prometheus.Histogram
	games         *prometheus.GaugeVec
}

func newWatchMetrics(reg prometheus.Registerer) watchMetrics {
	w := watchMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "runtime_events_total",
			Help: "Runtime events written (runtime:events), by type: engine_exited, unhealthy, healthy.",
		}, []string{"type"}),
		probeFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Name: "health_check_failures_total",
			Help: "Health checks of running engines that failed (a TCP connect to the endpoint).",
		}),
		reconcile: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "reconcile_seconds",
			Help:    "Time one reconciliation of the running records against their runtimes took.",
			Buckets: []float64{.001, .005, .01, .05, .1, .5, 1, 5, 10, 30},
		}),
		games: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "games",
			Help: "Games whose record says running or unhealthy, at the last reconciliation, by status.",
		}, []string{"status"}),
	}
	reg.MustRegister(w.events, w.probeFailures, w.reconcile, w.games)
	return w
}

// RuntimeEvent counts a runtime event written.
func (m *Metrics) RuntimeEvent(typ string) { m.watch.events.WithLabelValues(typ).Inc() }

// ProbeFailed counts a failed health check.
func (m *Metrics) ProbeFailed() { m.watch.probeFailures.Inc() }

// Reconciled records a reconciliation and the games it found by status.
func (m *Metrics) Reconciled(took time.Duration, byStatus map[string]int) {
	m.watch.reconcile.Observe(took.Seconds())
	for _, st := range []string{"running", "unhealthy"} {
		m.watch.games.WithLabelValues(st).Set(float64(byStatus[st]))
	}
}
