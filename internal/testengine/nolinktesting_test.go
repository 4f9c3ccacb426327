package testengine_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// rtdemo links testengine; package testing must not come
// with it (it registers its flags and pulls in the test runner).
func TestPackageDoesNotLinkTesting(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "galaxy/rtmanager/internal/testengine").CombinedOutput()
	require.NoError(t, err, string(out))
	require.NotContains(t, strings.Fields(string(out)), "testing")
}
