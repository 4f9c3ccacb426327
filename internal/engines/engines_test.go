package engines_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/engines"
)

// The example file.
const example = `engines:
  demo:
    runtime: process
    command: ["python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"]
    env: {LOG_LEVEL: info}
  chess:
    runtime: docker
    image: registry.example/chess:2.3
    port: 7000            # the engine's port inside the container
    env: {MODE: ranked}
    memory: 512MiB
    cpus: 1.0
`

func TestParseExample(t *testing.T) {
	s, err := engines.Parse("engines.yaml", []byte(example))
	require.NoError(t, err)
	assert.Equal(t, []string{"chess", "demo"}, s.Names())
	demo, ok := s.Get("demo")
	require.True(t, ok)
	assert.Equal(t, engines.Profile{Name: "demo", Runtime: "process",
		Command: []string{"python3", "-m", "http.server", "{port}", "--bind", "127.0.0.1"},
		Env:     map[string]string{"LOG_LEVEL": "info"}}, demo)
	chess, ok := s.Get("chess")
	require.True(t, ok)
	assert.Equal(t, engines.Profile{Name: "chess", Runtime: "docker", Image: "registry.example/chess:2.3", Port: 7000,
		Env: map[string]string{"MODE": "ranked"}, MemoryBytes: 512 << 20, CPUs: 1}, chess)
	_, ok = s.Get("../../bin/sh")
	assert.False(t, ok)

	s, err = engines.Parse("f.yaml", []byte("engines:\n  a:\n    runtime: process\n    command: [x]\n    health_path: /healthz\n"))
	require.NoError(t, err)
	a, _ := s.Get("a")
	assert.Equal(t, "/healthz", a.HealthPath)
}

// Each fault is reported with the line and the field at fault.
func TestParseFaults(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"empty", "", "f.yaml: empty file"},
		{"not yaml", "engines: [", "f.yaml: not YAML"},
		{"top-level list", "- a\n", "f.yaml:1: want a mapping"},
		{"unknown top-level key", "engines:\n  a: {runtime: process, command: [x]}\nextra: 1\n", "f.yaml:3: extra: unknown key"},
		{"no engines", "engines:\n", "f.yaml:1: engines: want a mapping"},
		{"empty engines", "engines: {}\n", "f.yaml:1: engines: no profile"},
		{"bad name", "engines:\n  ../../bin/sh: {runtime: process, command: [x]}\n", "f.yaml:2: engines.../../bin/sh: profile name must match"},
		{"upper-case name", "engines:\n  Chess: {runtime: process, command: [x]}\n", "f.yaml:2: engines.Chess: profile name must match"},
		{"duplicate name", "engines:\n  a: {runtime: process, command: [x]}\n  a: {runtime: process, command: [y]}\n", "f.yaml:3: engines.a: profile given twice"},
		{"profile not a mapping", "engines:\n  a: x\n", "f.yaml:2: engines.a: want a mapping"},
		{"no runtime", "engines:\n  a:\n    command: [x]\n", "f.yaml:3: engines.a.runtime: missing"},
		{"unknown runtime", "engines:\n  a:\n    runtime: vm\n", "f.yaml:3: engines.a.runtime: want process or docker, not \"vm\""},
		{"unknown key", "engines:\n  a:\n    runtime: process\n    command: [x]\n    shell: true\n", "f.yaml:5: engines.a.shell: unknown key"},
		{"duplicate key", "engines:\n  a:\n    runtime: process\n    command: [x]\n    command: [y]\n", "f.yaml:5: engines.a.command: given twice"},
		{"process without command", "engines:\n  a:\n    runtime: process\n", "f.yaml:3: engines.a.command: missing"},
		{"process command a string", "engines:\n  a:\n    runtime: process\n    command: sh -c x\n", "f.yaml:4: engines.a.command: want a non-empty list"},
		{"process empty command", "engines:\n  a:\n    runtime: process\n    command: []\n", "f.yaml:4: engines.a.command: want a non-empty list"},
		{"process empty program", "engines:\n  a:\n    runtime: process\n    command: ['', x]\n", "f.yaml:4: engines.a.command[0]: the program must not be empty"},
		{"process nested argument", "engines:\n  a:\n    runtime: process\n    command:\n      - x\n      - [y]\n", "f.yaml:6: engines.a.command[1]: want a plain string"},
		{"process with image", "engines:\n  a:\n    runtime: process\n    command: [x]\n    image: busybox\n", "f.yaml:5: engines.a.image: not for runtime process"},
		{"process sets PORT", "engines:\n  a:\n    runtime: process\n    command: [x]\n    env:\n      PORT: '1'\n", "f.yaml:6: engines.a.env.PORT: PORT is set by rtmanager"},
		{"bad env name", "engines:\n  a:\n    runtime: process\n    command: [x]\n    env: {'A=B': c}\n", "f.yaml:5: engines.a.env.A=B: not a valid environment variable name"},
		{"env value a list", "engines:\n  a:\n    runtime: process\n    command: [x]\n    env:\n      A: [1]\n", "f.yaml:6: engines.a.env.A: want a plain value"},
		{"docker without image", "engines:\n  a:\n    runtime: docker\n    port: 1\n", "f.yaml:3: engines.a.image: missing"},
		{"docker image with space", "engines:\n  a:\n    runtime: docker\n    image: 'a b'\n    port: 1\n", "f.yaml:4: engines.a.image: want an image reference"},
		{"docker without port", "engines:\n  a:\n    runtime: docker\n    image: x\n", "f.yaml:3: engines.a.port: missing"},
		{"docker port zero", "engines:\n  a:\n    runtime: docker\n    image: x\n    port: 0\n", "f.yaml:5: engines.a.port: want a port number"},
		{"docker port too big", "engines:\n  a:\n    runtime: docker\n    image: x\n    port: 65536\n", "f.yaml:5: engines.a.port: want a port number"},
		{"docker bad memory", "engines:\n  a:\n    runtime: docker\n    image: x\n    port: 1\n    memory: lots\n", "f.yaml:6: engines.a.memory: want a size"},
		{"docker zero memory", "engines:\n  a:\n    runtime: docker\n    image: x\n    port: 1\n    memory: 0\n", "f.yaml:6: engines.a.memory: want a size"},
		{"docker bad cpus", "engines:\n  a:\n    runtime: docker\n    image: x\n    port: 1\n    cpus: -1\n", "f.yaml:6: engines.a.cpus: want a positive number"},
		{"health path not absolute", "engines:\n  a:\n    runtime: process\n    command: [x]\n    health_path: healthz\n", "engines.a.health_path: want an absolute URL path"},
		{"health path with a query", "engines:\n  a:\n    runtime: process\n    command: [x]\n    health_path: /h?x=1\n", "engines.a.health_path: want an absolute URL path"},
		{"health path a list", "engines:\n  a:\n    runtime: process\n    command: [x]\n    health_path: [/h]\n", "f.yaml:5: engines.a.health_path: want a path"},
		{"docker with command", "engines:\n  a:\n    runtime: docker\n    image: x\n    port: 1\n    command: [sh]\n", "f.yaml:6: engines.a.command: not for runtime docker"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := engines.Parse("f.yaml", []byte(tt.yaml))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1": 1, "512MiB": 512 << 20, "1GiB": 1 << 30, "2KiB": 2048, "1MB": 1e6, "64m": 64 << 20, "3B": 3} {
		got, err := engines.ParseBytes(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "0", "-1", "1.5GiB", "1TiB", "9223372036854775807GiB", "x"} {
		_, err := engines.ParseBytes(in)
		assert.Error(t, err, in)
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "engines.yaml")
	require.NoError(t, os.WriteFile(p, []byte(example), 0o600))
	s, err := engines.Load(p)
	require.NoError(t, err)
	assert.Equal(t, 2, s.Len())

	_, err = engines.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	assert.ErrorContains(t, err, "read engine profiles")
}

func TestNewChecksProfiles(t *testing.T) {
	_, err := engines.New(engines.Profile{Name: "a", Runtime: "process"})
	require.ErrorContains(t, err, "engines.a.command")
	_, err = engines.New(engines.Profile{Name: "a/b", Runtime: "process", Command: []string{"x"}})
	require.ErrorContains(t, err, "must match")
	_, err = engines.New(engines.Profile{Name: "a", Runtime: "process", Command: []string{"x"}},
		engines.Profile{Name: "a", Runtime: "process", Command: []string{"y"}})
	require.ErrorContains(t, err, "given twice")
	s, err := engines.New(engines.Profile{Name: "d", Runtime: "docker", Image: "i", Port: 80})
	require.NoError(t, err)
	assert.Equal(t, []string{"d"}, s.Names())
}
