package docker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testengine"
)

// These tests stop real containers of the test game engine on the real
// engine (internal/testengine: Podman's Docker Engine API).

func running(t *testing.T, e *testengine.Engine, id string) bool {
	t.Helper()
	st, err := e.State(context.Background(), id)
	require.NoError(t, err)
	return st.Running
}

func exitCode(t *testing.T, e *testengine.Engine, id string) int {
	t.Helper()
	st, err := e.State(context.Background(), id)
	require.NoError(t, err)
	require.False(t, st.Running, "still running: %+v", st)
	return st.ExitCode
}

func engineDriver(t *testing.T) (*testengine.Engine, *docker.Driver) {
	e := testengine.Require(t)
	return e, newDriver(t, docker.Options{Host: e.Host()})
}

func TestGracefulStop(t *testing.T) {
	t.Parallel()
	e, d := engineDriver(t)
	c := e.MustRun(t, testengine.Spec{Game: "g-graceful", TermDelay: 100 * time.Millisecond})
	t0 := time.Now()
	require.NoError(t, d.Stop(context.Background(), c.ID, 10*time.Second))
	took := time.Since(t0)
	assert.Equal(t, 0, exitCode(t, e, c.ID), "exited on its own after SIGTERM")
	assert.Less(t, took, 8*time.Second, "not killed after the grace period")
	t.Logf("graceful stop took %s", took)
}

func TestSIGTERMIgnoredIsKilledAfterGrace(t *testing.T) {
	t.Parallel()
	e, d := engineDriver(t)
	c := e.MustRun(t, testengine.Spec{Game: "g-stubborn", IgnoreTerm: true})
	t0 := time.Now()
	require.NoError(t, d.Stop(context.Background(), c.ID, 2*time.Second))
	took := time.Since(t0)
	assert.Equal(t, 137, exitCode(t, e, c.ID), "killed")
	assert.GreaterOrEqual(t, took, 1900*time.Millisecond, "given its grace period first")
	t.Logf("stop of a SIGTERM-ignoring engine with grace 2s took %s", took)
}

func TestAlreadyStoppedIsSuccess(t *testing.T) {
	t.Parallel()
	e, d := engineDriver(t)
	c := e.MustRun(t, testengine.Spec{Game: "g-twice"})
	require.NoError(t, d.Stop(context.Background(), c.ID, 5*time.Second))
	require.NoError(t, d.Stop(context.Background(), c.ID, 5*time.Second))
	assert.Equal(t, 0, exitCode(t, e, c.ID))
}

func TestRemovedIsGone(t *testing.T) {
	t.Parallel()
	e, d := engineDriver(t)
	c := e.MustRun(t, testengine.Spec{Game: "g-removed"})
	require.NoError(t, e.Remove(context.Background(), c.ID))
	err := d.Stop(context.Background(), c.ID, 5*time.Second)
	require.ErrorIs(t, err, stopruntime.ErrGone)
	require.NotErrorIs(t, err, stopruntime.ErrTransient)
	require.ErrorIs(t, d.Stop(context.Background(), "rtm-no-such-container", time.Second), stopruntime.ErrGone)
}

func TestNeverStartedIsSuccess(t *testing.T) {
	t.Parallel()
	e, d := engineDriver(t)
	c := e.MustRun(t, testengine.Spec{Game: "g-created", NoStart: true})
	require.NoError(t, d.Stop(context.Background(), c.ID, 5*time.Second))
	assert.False(t, running(t, e, c.ID))
}

func TestRestartPolicyAlwaysStaysStopped(t *testing.T) {
	t.Parallel()
	e, d := engineDriver(t)
	c := e.MustRun(t, testengine.Spec{Game: "g-always", RestartAlways: true})
	require.NoError(t, d.Stop(context.Background(), c.ID, 5*time.Second))
	// A restart by the policy would follow the exit within a second.
	assert.Never(t, func() bool { return running(t, e, c.ID) }, 3*time.Second, 100*time.Millisecond)
}

func TestByIDPrefixAndByName(t *testing.T) {
	t.Parallel()
	e, d := engineDriver(t)
	a := e.MustRun(t, testengine.Spec{Game: "g-prefix"})
	b := e.MustRun(t, testengine.Spec{Game: "g-name"})
	require.NoError(t, d.Stop(context.Background(), a.ID[:12], 5*time.Second))
	require.NoError(t, d.Stop(context.Background(), b.Name, 5*time.Second))
	assert.False(t, running(t, e, a.ID))
	assert.False(t, running(t, e, b.ID))
}

// The caller's deadline ends the call, as transient; a retry finishes the
// stop.
func TestCallerDeadlineIsTransient(t *testing.T) {
	t.Parallel()
	e, d := engineDriver(t)
	c := e.MustRun(t, testengine.Spec{Game: "g-deadline", IgnoreTerm: true})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	err := d.Stop(ctx, c.ID, 30*time.Second)
	require.ErrorIs(t, err, stopruntime.ErrTransient)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, d.Stop(context.Background(), c.ID, 1*time.Second))
	assert.Equal(t, 137, exitCode(t, e, c.ID))
}

// Podman answers 500 to stopping a paused container (Docker unpauses it):
// the driver unpauses and stops it.
func TestPausedContainerIsStopped(t *testing.T) {
	t.Parallel()
	e, d := engineDriver(t)
	c := e.MustRun(t, testengine.Spec{Game: "g-paused"})
	require.NoError(t, e.Pause(context.Background(), c.ID))
	require.NoError(t, d.Stop(context.Background(), c.ID, 5*time.Second))
	assert.Equal(t, 0, exitCode(t, e, c.ID))
}

// Grace is sent in whole seconds, rounded up.
func TestGraceRoundedUpToSeconds(t *testing.T) {
	t.Parallel()
	e := testengine.Require(t)
	p := e.NewProxy(t, "")
	d := newDriver(t, docker.Options{Host: p.Host()})
	c := e.MustRun(t, testengine.Spec{Game: "g-rounding"})
	require.NoError(t, d.Stop(context.Background(), c.ID, 1500*time.Millisecond))
	require.NoError(t, d.Stop(context.Background(), c.ID, 0))
	stops := p.RequestsWith("/stop")
	require.Len(t, stops, 2)
	assert.Contains(t, stops[0], "/containers/"+c.ID+"/stop?t=2")
	assert.Contains(t, stops[1], "/containers/"+c.ID+"/stop?t=0")
}

// MUST HOLD: against a daemon that speaks API 1.41 at most (the proxy
// answers like Debian 12's docker.io 20.10), the negotiated version is
// used, stops succeed and the containers stop.
func TestNegotiatesWithAnAPI141Daemon(t *testing.T) {
	t.Parallel()
	e := testengine.Require(t)
	p := e.NewProxy(t, "1.41")
	d := newDriver(t, docker.Options{Host: p.Host()})
	cs := []testengine.Container{
		e.MustRun(t, testengine.Spec{Game: "g-141-a"}),
		e.MustRun(t, testengine.Spec{Game: "g-141-b", IgnoreTerm: true}),
	}
	for _, c := range cs {
		require.NoError(t, d.Stop(context.Background(), c.ID, time.Second))
		assert.False(t, running(t, e, c.ID), c.Game)
	}
	assert.Empty(t, p.RequestsWith("too new"))
	stops := p.RequestsWith("/stop")
	require.Len(t, stops, 2)
	for _, s := range stops {
		assert.Contains(t, s, "POST /v1.41/containers/")
	}
	v, err := d.Check(context.Background())
	require.NoError(t, err)
	assert.Equal(t, docker.Versions{Daemon: "1.41", Used: "1.41", Negotiated: true}, v)
}

// A fixed version the daemon does not speak is a permanent failure, and
// Check says so; the container keeps running.
func TestFixedVersionTooNewIsPermanent(t *testing.T) {
	t.Parallel()
	e := testengine.Require(t)
	p := e.NewProxy(t, "1.41")
	d := newDriver(t, docker.Options{Host: p.Host(), APIVersion: "1.47"})
	c := e.MustRun(t, testengine.Spec{Game: "g-fixed"})
	err := d.Stop(context.Background(), c.ID, time.Second)
	require.Error(t, err)
	require.NotErrorIs(t, err, stopruntime.ErrTransient)
	assert.Contains(t, err.Error(), "client version 1.47 is too new. Maximum supported API version is 1.41")
	assert.True(t, running(t, e, c.ID))
	_, err = d.Check(context.Background())
	require.ErrorIs(t, err, docker.ErrUnsupportedAPIVersion)
}

// DOCKER_API_VERSION and DOCKER_HOST are honoured as by the Docker CLI;
// the driver's options win over them.
func TestDockerEnvironment(t *testing.T) {
	e := testengine.Require(t)
	p := e.NewProxy(t, "1.41")
	t.Setenv("DOCKER_HOST", p.Host())
	t.Setenv(docker.EnvAPIVersion, "1.44")
	c := e.MustRun(t, testengine.Spec{Game: "g-env"})

	d := newDriver(t, docker.Options{})
	err := d.Stop(context.Background(), c.ID, time.Second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "client version 1.44 is too new")
	assert.True(t, running(t, e, c.ID))

	d = newDriver(t, docker.Options{APIVersion: "1.41"})
	require.NoError(t, d.Stop(context.Background(), c.ID, time.Second))
	assert.False(t, running(t, e, c.ID))
	assert.Len(t, p.RequestsWith("/stop"), 2, "both went to DOCKER_HOST")
}

// A daemon downgraded under a running rtmanager: the stale negotiated
// version's "too new" is transient, and the retry negotiates again; stops
// running at the same time (under -race) all get through.
func TestDowngradedDaemonIsNegotiatedAgain(t *testing.T) {
	t.Parallel()
	e := testengine.Require(t)
	p := e.NewProxy(t, "1.44")
	d := newDriver(t, docker.Options{Host: p.Host()})
	a := e.MustRun(t, testengine.Spec{Game: "g-down-a"})
	require.NoError(t, d.Stop(context.Background(), a.ID, time.Second))
	require.Len(t, p.RequestsWith("/v1.44/containers/"+a.ID+"/stop"), 1)

	p.SetMaxAPIVersion("1.41")
	var cs []testengine.Container
	for _, g := range []string{"g-down-b", "g-down-c", "g-down-d"} {
		cs = append(cs, e.MustRun(t, testengine.Spec{Game: g}))
	}
	errs := make(chan error, len(cs))
	transient := make(chan bool, len(cs))
	for _, c := range cs {
		go func() {
			err := d.Stop(context.Background(), c.ID, time.Second)
			if err != nil {
				transient <- errors.Is(err, stopruntime.ErrTransient)
				err = d.Stop(context.Background(), c.ID, time.Second) // the job's retry
			}
			errs <- err
		}()
	}
	for range cs {
		require.NoError(t, <-errs)
	}
	close(transient)
	n := 0
	for tr := range transient {
		assert.True(t, tr, "a stale version is a transient failure")
		n++
	}
	assert.GreaterOrEqual(t, n, 1, "the first stop after the downgrade met the stale version")
	for _, c := range cs {
		assert.False(t, running(t, e, c.ID), c.Game)
		assert.Len(t, p.RequestsWith("/v1.41/containers/"+c.ID+"/stop"), 1, c.Game)
	}
}

// A daemon older than MinAPIVersion: Check and stops fail permanently.
func TestDaemonBelowMinimumIsUnsupported(t *testing.T) {
	t.Parallel()
	e := testengine.Require(t)
	p := e.NewProxy(t, "1.39")
	d := newDriver(t, docker.Options{Host: p.Host()})
	_, err := d.Check(context.Background())
	require.ErrorIs(t, err, docker.ErrUnsupportedAPIVersion)
	assert.Contains(t, err.Error(), "1.39")
	err = d.Stop(context.Background(), "anything", time.Second)
	require.ErrorIs(t, err, docker.ErrUnsupportedAPIVersion)
	assert.NotErrorIs(t, err, stopruntime.ErrTransient)
}

// The daemon goes away and comes back: stops are transient meanwhile and
// succeed after.
func TestDaemonGoneAndBack(t *testing.T) {
	t.Parallel()
	e := testengine.Require(t)
	p := e.NewProxy(t, "")
	d := newDriver(t, docker.Options{Host: p.Host()})
	c := e.MustRun(t, testengine.Spec{Game: "g-outage"})
	p.Down()
	err := d.Stop(context.Background(), c.ID, time.Second)
	require.ErrorIs(t, err, stopruntime.ErrTransient)
	_, err = d.Check(context.Background())
	require.ErrorIs(t, err, stopruntime.ErrTransient)
	assert.True(t, running(t, e, c.ID))
	require.NoError(t, p.Up())
	_, err = d.Check(context.Background())
	require.NoError(t, err)
	require.NoError(t, d.Stop(context.Background(), c.ID, time.Second))
	assert.False(t, running(t, e, c.ID))
}
