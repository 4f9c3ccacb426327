package docker_test

import (
	"testing"

	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"

	"galaxy/rtmanager/internal/testengine"
)

func TestMain(m *testing.M) { testengine.Main(m) }

func clientMinAPIVersion() string { return client.MinAPIVersion }

func versionLess(a, b string) bool { return versions.LessThan(a, b) }
