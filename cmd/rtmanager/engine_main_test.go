package main

import (
	"testing"

	"galaxy/rtmanager/internal/testengine"
)

// TestMain closes the container engine the docker end-to-end tests share.
func TestMain(m *testing.M) { testengine.Main(m) }
