package metrics_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/metrics"
	"galaxy/rtmanager/internal/runtimes/docker"
)

// The gauges follow the docker driver's slots: taking a slot needs no
// daemon, so two are held and a third operation waits.
func TestDockerSlotGauges(t *testing.T) {
	d, err := docker.New(docker.Options{Host: "unix://" + t.TempDir() + "/no.sock", Concurrency: 2})
	require.NoError(t, err)
	defer d.Close()
	reg := prometheus.NewRegistry()
	metrics.RegisterDockerSlots(reg, d)

	var releases []func()
	for range 2 {
		_, release, err := d.AcquireSlot(context.Background())
		require.NoError(t, err)
		releases = append(releases, release)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = d.Remove(ctx, "c1") }()
	require.Eventually(t, func() bool { return d.Waiting() == 1 }, 10*time.Second, 5*time.Millisecond)
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP rtmanager_docker_requests_in_flight Docker Engine API operations holding one of the --docker-concurrency slots (each has at most one request at the daemon).
# TYPE rtmanager_docker_requests_in_flight gauge
rtmanager_docker_requests_in_flight 2
# HELP rtmanager_docker_requests_waiting Docker Engine API operations waiting for a free --docker-concurrency slot.
# TYPE rtmanager_docker_requests_waiting gauge
rtmanager_docker_requests_waiting 1
`)))
	cancel()
	require.Eventually(t, func() bool { return d.Waiting() == 0 }, 10*time.Second, 5*time.Millisecond)
	for _, r := range releases {
		r()
	}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP rtmanager_docker_requests_in_flight Docker Engine API operations holding one of the --docker-concurrency slots (each has at most one request at the daemon).
# TYPE rtmanager_docker_requests_in_flight gauge
rtmanager_docker_requests_in_flight 0
# HELP rtmanager_docker_requests_waiting Docker Engine API operations waiting for a free --docker-concurrency slot.
# TYPE rtmanager_docker_requests_waiting gauge
rtmanager_docker_requests_waiting 0
`)))
}
