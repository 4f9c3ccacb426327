package main

import (
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimes/docker"
)

func TestDockerConcurrencyFlag(t *testing.T) {
	noEnv := func(string) string { return "" }
	cfg, err := parseConfig(nil, noEnv, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, docker.DefaultConcurrency, cfg.DockerConcurrency)

	cfg, err = parseConfig(nil, func(k string) string {
		return map[string]string{"RTMANAGER_DOCKER_CONCURRENCY": "7"}[k]
	}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 7, cfg.DockerConcurrency)

	for _, v := range []string{"0", "-1", "4097", "many"} {
		_, err := parseConfig([]string{"--docker-concurrency", v}, noEnv, io.Discard)
		var ue *usageError
		require.ErrorAs(t, err, &ue, v)
		assert.Contains(t, ue.msg, "docker-concurrency", v)
	}
	_, err = parseConfig([]string{"--docker-concurrency", "0"}, noEnv, io.Discard)
	assert.EqualError(t, err, "invalid --docker-concurrency 0: want 1 to 4096")
}
