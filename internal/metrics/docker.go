package metrics

import "github.com/prometheus/client_golang/prometheus"

// Slots is what a runtime driver that bounds its concurrent engine
// requests reports (the docker driver: --docker-concurrency).
type Slots interface {
	InFlight() int
	Waiting() int
}

// RegisterDockerSlots registers two gauges read from s at scrape time:
// Docker Engine requests in flight (operations holding a slot) and
// operations waiting for a slot.
func RegisterDockerSlots(reg prometheus.Registerer, s Slots) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "docker_requests_in_flight",
			Help: "Docker Engine API operations holding one of the --docker-concurrency slots (each has at most one request at the daemon).",
		}, func() float64 { return float64(s.InFlight()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace, Name: "docker_requests_waiting",
			Help: "Docker Engine API operations waiting for a free --docker-concurrency slot.",
		}, func() float64 { return float64(s.Waiting()) }),
	)
}
