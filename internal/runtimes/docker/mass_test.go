package docker_test

import (
	"context"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/testengine"
)

// MassEnv opts in to TestMassStopMeasure: the number of containers (a few
// hundred; Podman's create costs CPU). MassDelayEnv is how long each engine
// takes to exit after SIGTERM (default 1s).
const (
	MassEnv      = "RTMANAGER_DOCKER_MASS"
	MassDelayEnv = "RTMANAGER_DOCKER_MASS_DELAY"
)

// TestMassStopMeasure measures a mass stop against the real engine: K
// containers whose engines exit a delay after SIGTERM, all stopped at once
// through the driver at concurrency 4, 32 (the default) and K (unbounded),
// on the engine's socket. It logs the time to stop all K at each:
//
//	RTMANAGER_DOCKER_MASS=300 go test -run TestMassStopMeasure -v -timeout 30m ./internal/runtimes/docker/
func TestMassStopMeasure(t *testing.T) {
	k, _ := strconv.Atoi(os.Getenv(MassEnv))
	if k <= 0 || testing.Short() {
		t.Skipf("a measurement; set %s=<containers> to run it", MassEnv)
	}
	delay := time.Second
	if v := os.Getenv(MassDelayEnv); v != "" {
		var err error
		delay, err = time.ParseDuration(v)
		require.NoError(t, err)
	}
	e := testengine.Require(t)
	t0 := time.Now()
	cs := runMany(t, e, "g-mass", k, testengine.Spec{TermDelay: delay})
	t.Logf("%d containers created and started in %s", k, time.Since(t0).Round(time.Millisecond))
	for i, n := range []int{4, docker.DefaultConcurrency, min(k, docker.MaxConcurrency)} {
		if i > 0 {
			t0 = time.Now()
			restartAll(t, e, cs)
			t.Logf("%d containers started again in %s", k, time.Since(t0).Round(time.Millisecond))
		}
		d := newDriver(t, docker.Options{Host: e.Host(), Concurrency: n})
		_, err := d.Check(context.Background())
		require.NoError(t, err)
		t0 = time.Now()
		errs := stopAll(d, cs, 30*time.Second)
		took := time.Since(t0)
		for i, err := range errs {
			require.NoError(t, err, cs[i].Game)
		}
		for _, c := range cs {
			assert.Equal(t, 0, exitCode(t, e, c.ID), "exited on SIGTERM after its delay: %s", c.Game)
		}
		t.Logf("MASS containers=%d exit_delay=%s concurrency=%d stop_all=%s floor=%s per_slot_bound=%s",
			k, delay, n, took.Round(time.Millisecond), delay, (time.Duration((k+n-1)/n) * delay))
	}
}

// restartAll starts stopped test engines again and waits until each
// accepts connections.
func restartAll(t *testing.T, e *testengine.Engine, cs []testengine.Container) {
	t.Helper()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 4)
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			_, err := e.Client().ContainerStart(context.Background(), c.ID, client.ContainerStartOptions{})
			if !assert.NoError(t, err, c.Game) {
				return
			}
			assert.Eventually(t, func() bool {
				conn, err := net.DialTimeout("tcp", c.Addr, time.Second)
				if err == nil {
					_ = conn.Close()
				}
				return err == nil
			}, time.Minute, 10*time.Millisecond, "%s listens again", c.Game)
		}()
	}
	wg.Wait()
	require.False(t, t.Failed())
}
