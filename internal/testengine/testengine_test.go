package testengine_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testengine"
)

func TestMain(m *testing.M) { testengine.Main(m) }

// The install script and the harness install the same packages.
func TestScriptInstallsThePackages(t *testing.T) {
	b, err := os.ReadFile("../../scripts/ensure-podman.sh")
	require.NoError(t, err)
	assert.Contains(t, string(b), `PACKAGES="`+strings.Join(testengine.Packages, " ")+`"`)
}

func TestEngineRunsTheGameEngine(t *testing.T) {
	e := testengine.Require(t)
	t.Logf("podman API up in %s, image ready in %s", e.StartedIn, e.ImageIn)
	ctx := context.Background()
	c := e.MustRun(t, testengine.Spec{Game: "g-harness"})

	// The engine answers on its loopback endpoint.
	conn, err := net.DialTimeout("tcp", c.Addr, 2*time.Second)
	require.NoError(t, err)
	line, err := bufio.NewReader(conn).ReadString('\n')
	_ = conn.Close()
	require.NoError(t, err)
	assert.Equal(t, "galaxy engine for game g-harness\n", line)

	st, err := e.State(ctx, c.ID)
	require.NoError(t, err)
	assert.True(t, st.Running)

	// Labelled with its game and its owner.
	res, err := e.Client().ContainerInspect(ctx, c.ID, clientInspect())
	require.NoError(t, err)
	assert.Equal(t, "g-harness", res.Container.Config.Labels[testengine.GameLabel])
	assert.NotEmpty(t, res.Container.Config.Labels[testengine.Label])
}

func TestProxyAnswersAsAnOlderDaemon(t *testing.T) {
	e := testengine.Require(t)
	p := e.NewProxy(t, "1.41")
	hc := &http.Client{Timeout: 10 * time.Second}
	base := "http://" + strings.TrimPrefix(p.Host(), "tcp://")

	resp, err := hc.Get(base + "/_ping")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "1.41", resp.Header.Get("Api-Version"))

	resp, err = hc.Get(base + "/v1.47/containers/json")
	require.NoError(t, err)
	body := readAll(t, resp)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, body, "client version 1.47 is too new. Maximum supported API version is 1.41")

	resp, err = hc.Get(base + "/v1.41/containers/json")
	require.NoError(t, err)
	_ = readAll(t, resp)
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// Down: nothing listens; Up: the same address answers again.
	p.Down()
	_, err = hc.Get(base + "/_ping")
	require.Error(t, err)
	require.NoError(t, p.Up())
	resp, err = hc.Get(base + "/_ping")
	require.NoError(t, err)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestRequireHelper is run in a subprocess by TestMissingEngineSkipsOrFails.
func TestRequireHelper(t *testing.T) {
	if os.Getenv("TESTENGINE_HELPER") != "1" {
		t.Skip("run by TestMissingEngineSkipsOrFails")
	}
	testengine.Require(t)
	t.Log("engine available")
}

// Without the engine a test skips with one line saying why; with CI=true
// or RTMANAGER_REQUIRE_ENGINE=1 it fails instead.
func TestMissingEngineSkipsOrFails(t *testing.T) {
	run := func(env ...string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestRequireHelper$", "-test.v")
		// An empty PATH: no podman, no dpkg-query, no apt-get.
		cmd.Env = append([]string{"PATH=" + t.TempDir(), "TESTENGINE_HELPER=1", "HOME=" + os.Getenv("HOME")}, env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run()
	require.NoError(t, err, out)
	assert.Contains(t, out, "--- SKIP: TestRequireHelper")
	assert.Contains(t, out, "no container engine: container engine packages missing (podman runc)")
	for _, env := range []string{"CI=true", testengine.RequireEnv + "=1"} {
		out, err = run(env)
		require.Error(t, err, env)
		assert.Contains(t, out, "--- FAIL: TestRequireHelper", env)
		assert.Contains(t, out, "a real container engine is required here", env)
	}
}
