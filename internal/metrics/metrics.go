// Package metrics exposes rtmanager's Prometheus metrics. Metrics implements
// both redisstream.Observer (what the broker does) and stopjobs.Metrics (what
// the handler answers); GroupCollector reads the consumer group's pending
// entries and lag from Redis at scrape time, so nothing is polled between
// scrapes.
package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

const namespace = "rtmanager"

// Metrics holds the counters and histograms. Create it with New.
type Metrics struct {
	received     *prometheus.CounterVec
	redelivered  *prometheus.CounterVec
	committed    *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	readErrors   *prometheus.CounterVec
	results      *prometheus.CounterVec
	retries      *prometheus.CounterVec
	latency      prometheus.Histogram
	watch        watchMetrics // watch.go
}

// New registers the metrics with reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_received_total",
			Help: "Stream entries read, new or claimed, by stream.",
		}, []string{"stream"}),
		redelivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "redeliveries_total",
			Help: "Entries delivered again after a failure or claimed from another consumer, by stream.",
		}, []string{"stream"}),
		committed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "acks_total",
			Help: "Entries acknowledged together with what their handler published, by stream.",
		}, []string{"stream"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "dead_letters_total",
			Help: "Entries dead-lettered, by stream and reason.",
		}, []string{"stream", "reason"}),
		readErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "redis_read_errors_total",
			Help: "Failed reads of a stream (Redis unreachable, for instance).",
		}, []string{"stream"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "job_results_total",
			Help: "Jobs answered, by operation (start, stop), outcome and error code.",
		}, []string{"operation", "outcome", "error_code"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "job_retries_total",
			Help: "Jobs handed back for a retry, by operation and the error code they would get.",
		}, []string{"operation", "error_code"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "job_handling_seconds",
			Help:    "Time from a stop job reaching its handler to its result being handed to the broker.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
	}
	reg.MustRegister(m.received, m.redelivered, m.committed, m.deadLettered, m.readErrors, m.results, m.retries, m.latency)
	m.watch = newWatchMetrics(reg)
	return m
}

// Totals is a Gatherer of the job-result and dead-letter counters alone,
// for the console's rates: gathering the whole registry would also run the
// GroupCollectors, which read Redis.
func (m *Metrics) Totals() prometheus.Gatherer {
	r := prometheus.NewRegistry()
	r.MustRegister(m.results, m.deadLettered)
	return r
}

// Received implements redisstream.Observer.
func (m *Metrics) Received(stream string, n int) { m.received.WithLabelValues(stream).Add(float64(n)) }

// Redelivered implements redisstream.Observer.
func (m *Metrics) Redelivered(stream string) { m.redelivered.WithLabelValues(stream).Inc() }

// Committed implements redisstream.Observer.
func (m *Metrics) Committed(stream string, n int) {
	m.committed.WithLabelValues(stream).Add(float64(n))
}

// DeadLettered implements redisstream.Observer.
func (m *Metrics) DeadLettered(stream, reason string) {
	m.deadLettered.WithLabelValues(stream, reason).Inc()
}

// ReadError implements redisstream.Observer.
func (m *Metrics) ReadError(stream string, _ error) { m.readErrors.WithLabelValues(stream).Inc() }

// Result implements stopjobs.Metrics (operation stop).
func (m *Metrics) Result(outcome, errorCode string, took time.Duration) {
	m.OperationResult("stop", outcome, errorCode, took)
}

// Retry implements stopjobs.Metrics (operation stop).
func (m *Metrics) Retry(errorCode string) { m.OperationRetry("stop", errorCode) }

// OperationResult implements startjobs.Metrics.
func (m *Metrics) OperationResult(operation, outcome, errorCode string, took time.Duration) {
	m.results.WithLabelValues(operation, outcome, errorCode).Inc()
	m.latency.Observe(took.Seconds())
}

// OperationRetry implements startjobs.Metrics.
func (m *Metrics) OperationRetry(operation, errorCode string) {
	m.retries.WithLabelValues(operation, errorCode).Inc()
}

// GroupCollector reports a consumer group's pending entries and lag (entries
// not yet delivered to the group), read with XINFO GROUPS at scrape time.
// A sharded channel is reported as one: the sum over its shard keys, under
// the channel's address, so dashboards do not change with the shard count.
type GroupCollector struct {
	rdb          redis.UniversalClient
	keys         []string
	group        string
	pending, lag *prometheus.Desc
	up           *prometheus.Desc
}

// NewGroupCollector reports on group of stream.
func NewGroupCollector(rdb redis.UniversalClient, stream, group string) *GroupCollector {
	return NewShardedGroupCollector(rdb, stream, []string{stream}, group)
}

// NewShardedGroupCollector reports on group of the channel at address,
// read from keys (its shard keys), labelled with address.
func NewShardedGroupCollector(rdb redis.UniversalClient, address string, keys []string, group string) *GroupCollector {
	labels := prometheus.Labels{"stream": address, "group": group}
	return &GroupCollector{
		rdb: rdb, keys: keys, group: group,
		pending: prometheus.NewDesc(namespace+"_pending_entries", "Entries delivered to the group and not yet acknowledged.", nil, labels),
		lag:     prometheus.NewDesc(namespace+"_consumer_group_lag", "Entries of the stream not yet delivered to the group.", nil, labels),
		up:      prometheus.NewDesc(namespace+"_consumer_group_up", "1 when the group could be read from Redis at this scrape.", nil, labels),
	}
}

// Describe implements prometheus.Collector.
func (c *GroupCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.lag
	ch <- c.up
}

// Collect implements prometheus.Collector.
func (c *GroupCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cmds := make([]*redis.XInfoGroupsCmd, len(c.keys))
	// Pipelined: one round trip per node, whatever the shard count.
	_, _ = c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range c.keys {
			cmds[i] = p.XInfoGroups(ctx, k)
		}
		return nil
	})
	var pending, lag int64
	lagKnown := true
	for _, cmd := range cmds {
		g, ok := findGroup(cmd, c.group)
		if !ok {
			// Up only when every shard's group is read.
			ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 0)
			return
		}
		pending += g.Pending
		if g.Lag < 0 {
			lagKnown = false
		}
		lag += max(g.Lag, 0)
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(pending))
	if lagKnown {
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(lag))
	}
	ch <- prometheus.MustNewConstMetric(c.up, prometheus.GaugeValue, 1)
}

func findGroup(cmd *redis.XInfoGroupsCmd, name string) (redis.XInfoGroup, bool) {
	groups, err := cmd.Result()
	if err != nil {
		return redis.XInfoGroup{}, false
	}
	for _, g := range groups {
		if g.Name == name {
			return g, true
		}
	}
	return redis.XInfoGroup{}, false
}
