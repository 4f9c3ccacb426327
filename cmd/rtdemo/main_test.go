package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The demo, as `make run` runs it, without the final wait.
func TestDemo(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "rtmanager")
	out, err := exec.Command("go", "build", "-o", bin, "../rtmanager").CombinedOutput()
	require.NoError(t, err, string(out))
	// The demo re-executes itself as the engine: build it too.
	self := filepath.Join(t.TempDir(), "rtdemo")
	out, err = exec.Command("go", "build", "-o", self, ".").CombinedOutput()
	require.NoError(t, err, string(out))

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, self, "--rtmanager", bin, "--wait=false")
	cmd.Stdout, cmd.Stderr = &buf, &buf
	require.NoError(t, cmd.Run(), buf.String())
	got := buf.String()
	for _, g := range []string{"demo-1", "demo-2", "demo-3"} {
		assert.Regexp(t, `result +\S+ +game=`+g+` +outcome=success +error_code=- `, got)
		assert.Contains(t, got, "engine          game "+g+" (pid ")
		assert.Regexp(t, `start job +\S+ +game=`+g+` engine=demo`, got)
		assert.Regexp(t, `engine +game `+g+` running: pid \d+, endpoint 127\.0\.0\.1:\d+, started as pid:\d+:start:\d+`, got)
	}
	assert.Regexp(t, `game=demo-1 +outcome=success +error_code=replay_no_op`, got)
	assert.Regexp(t, `game=no-such-game +outcome=failure +error_code=not_found`, got)
	assert.NotContains(t, got, "STILL RUNNING")
	assert.Regexp(t, `\(pid \d+\): gone`, got)
}
