package main

import (
	"os"
	"testing"
)

// TestMain lets the test binary be the ceiling's child process too: the
// smoke test's ceiling-process pipeline runs os.Executable(), which under
// `go test` is this binary.
func TestMain(m *testing.M) {
	if os.Getenv(ceilingChildAddrEnv) != "" {
		os.Exit(ceilingChild(os.Getenv, os.Stderr))
	}
	os.Exit(m.Run())
}
