package main

import (
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

// TestMain lets the test binary be the ceiling's child process too: the
// smoke test's ceiling-process pipeline runs os.Executable(), which under
// `go test` is this binary.
func TestMain(m *testing.M) {
	if os.Getenv(ceilingChildAddrEnv) != "" {
		os.Exit(ceilingChild(os.Getenv, os.Stdin, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestCeilingChildRefusesABadBatch(t *testing.T) {
	var stderr strings.Builder
	env := map[string]string{ceilingChildAddrEnv: "127.0.0.1:1", ceilingChildBatchEnv: "zero"}
	assert.Equal(t, 1, ceilingChild(func(k string) string { return env[k] }, strings.NewReader(""), &stderr))
	assert.Contains(t, stderr.String(), ceilingChildBatchEnv)
}

func TestCeilingChildEndsWithItsStdin(t *testing.T) {
	srv := testredis.Start(t)
	env := map[string]string{ceilingChildAddrEnv: srv.Addr(), ceilingChildBatchEnv: "128"}
	r, w := io.Pipe()
	code := make(chan int, 1)
	go func() { code <- ceilingChild(func(k string) string { return env[k] }, r, io.Discard) }()
	select {
	case <-code:
		t.Fatal("the child ended while rtbench still held its stdin")
	case <-time.After(300 * time.Millisecond):
	}
	require.NoError(t, w.Close()) // rtbench gone: the pipe's end
	select {
	case c := <-code:
		assert.Equal(t, 0, c)
	case <-time.After(5 * time.Second):
		t.Fatal("the child kept consuming after its stdin ended")
	}
}
