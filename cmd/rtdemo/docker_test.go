package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testengine"
)

func TestMain(m *testing.M) { testengine.Main(m) }

// `make run RUNTIME=docker`, without the final wait: real containers
// started by start jobs and stopped by stop jobs, the SIGTERM-ignoring one killed after the grace
// period, and every container removed when the demo ends.
func TestDemoDocker(t *testing.T) {
	e := testengine.Require(t) // the engine the demo starts must be there
	dir := t.TempDir()
	for pkg, out := range map[string]string{"../rtmanager": "rtmanager", ".": "rtdemo"} {
		b, err := exec.Command("go", "build", "-o", filepath.Join(dir, out), pkg).CombinedOutput()
		require.NoError(t, err, string(b))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "rtdemo"), "--rtmanager", filepath.Join(dir, "rtmanager"), "--runtime", "docker", "--wait=false")
	cmd.Stdout, cmd.Stderr = &buf, &buf
	require.NoError(t, cmd.Run(), buf.String())
	got := buf.String()
	for _, g := range []string{"demo-1", "demo-2", "demo-3"} {
		assert.Regexp(t, `result +\S+ +game=`+g+` +outcome=success +error_code=- +container=[0-9a-f]{64}`, got)
		assert.Regexp(t, `engine +game `+g+` running: container [0-9a-f]{12} \(rtm-`+g+`-\d+-\d+, label galaxy.rtmanager.game_id=`+g+`\), endpoint 127\.0\.0\.1:\d+`, got)
	}
	assert.Regexp(t, `game=demo-1 +outcome=success +error_code=replay_no_op`, got)
	assert.Regexp(t, `game=no-such-game +outcome=failure +error_code=not_found`, got)
	assert.Regexp(t, `game demo-1 \(container [0-9a-f]{12}\): exited, exit code 0`, got)
	assert.Regexp(t, `game demo-3 \(container [0-9a-f]{12}\): exited, exit code 137 \(killed after the grace period\)`, got)
	assert.NotContains(t, got, "STILL RUNNING")

	// The demo removed its containers.
	names := regexp.MustCompile(`\((rtm-demo-\d-\d+-\d+),`).FindAllStringSubmatch(got, -1)
	require.Len(t, names, 3)
	for _, n := range names {
		_, err := e.State(context.Background(), n[1])
		assert.True(t, cerrdefs.IsNotFound(err), "%s: %v", n[1], err)
	}
}
