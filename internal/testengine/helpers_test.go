package testengine_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
)

func clientInspect() client.ContainerInspectOptions { return client.ContainerInspectOptions{} }

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.NoError(t, err)
	return string(b)
}
