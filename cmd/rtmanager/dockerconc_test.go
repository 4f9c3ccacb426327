package main

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/testengine"
)

func TestDockerConcurrencyFlag(t *testing.T) {
	noEnv := func(string) string { return "" }
	cfg, err := parseConfig(nil, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, docker.DefaultConcurrency, cfg.DockerConcurrency)

	cfg, err = parseConfig(nil, func(k string) string {
		return map[string]string{"RTMANAGER_DOCKER_CONCURRENCY": "7"}[k]
	}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 7, cfg.DockerConcurrency)

	for _, v := range []string{"0", "-1", "4097", "many"} {
		_, err := parseConfig([]string{"--docker-concurrency", v}, noEnv, io.Discard)
		var ue *usageError
		require.ErrorAs(t, err, &ue, v)
		assert.Contains(t, ue.msg, "docker-concurrency", v)
	}
	_, err = parseConfig([]string{"--docker-concurrency", "0"}, noEnv, io.Discard)
	assert.EqualError(t, err, "invalid --docker-concurrency 0: want 1 to 4096")
}

// The built binary with --docker-concurrency 2: five stop jobs at once,
// never more than two requests at the engine, the gauges on /metrics show
// two in flight and the rest waiting, and every job is answered once.
func TestEndToEndDockerConcurrency(t *testing.T) {
	e := testengine.Require(t)
	w := newWorld(t)
	cp := e.NewCountingProxy(t)
	var games []string
	for i := range 5 {
		c := e.MustRun(t, testengine.Spec{Game: fmt.Sprintf("g-conc-%d", i), TermDelay: time.Second})
		w.register(t, c)
		games = append(games, c.Game)
	}
	p := startBinary(t, "--redis-url", w.srv.URL(), "--runtime", "docker", "--docker-host", cp.Host(), "--docker-concurrency", "2",
		// The watch's event stream and inspects take no slot (and the
		// counting proxy cannot stream).
		"--watch=false")
	var ids []string
	for _, g := range games {
		ids = append(ids, w.add(t, "game_id", g, "reason", "game_finished"))
	}
	require.Eventually(t, func() bool {
		_, m := p.body("/metrics")
		return strings.Contains(m, "\nrtmanager_docker_requests_in_flight 2\n") && !strings.Contains(m, "\nrtmanager_docker_requests_waiting 0\n")
	}, 30*time.Second, 10*time.Millisecond, "two stops hold the slots while the others wait")
	got := w.resultsByJob(t, ids...)
	for _, id := range ids {
		require.Len(t, got[id], 1, "job %s answered once", id)
		assert.Equal(t, "success", got[id][0]["outcome"], "%v", got[id][0])
	}
	assert.Len(t, cp.RequestsWith("/stop"), len(games))
	assert.LessOrEqual(t, cp.MaxInFlight(), 2, "--docker-concurrency 2 at the engine")
	_, m := p.body("/metrics")
	assert.Contains(t, m, "\nrtmanager_docker_requests_in_flight 0\n")
	assert.Contains(t, m, "\nrtmanager_docker_requests_waiting 0\n")
}
