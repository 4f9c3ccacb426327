// Package engines reads the operator's engine profiles (--engines FILE).
//
// A start job names a profile, never an image or a command: the profile is
// the only place where what rtmanager runs is decided, so a producer of
// start jobs cannot make rtmanager run arbitrary code. The file is checked
// whole at start-up; an error names the line and the field at fault.
package engines

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
)

// Runtimes a profile may name.
const (
	RuntimeProcess = "process"
	RuntimeDocker  = "docker"
)

// PortPlaceholder in a process command is replaced by the port rtmanager
// chose for the engine (also given as env PORT).
const PortPlaceholder = "{port}"

// NamePattern is the contract's pattern of a start job's engine field.
var NamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// envName is a portable environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Profile is one engine profile.
type Profile struct {
	Name    string
	Runtime string // RuntimeProcess or RuntimeDocker
	// Env is added to the engine's environment.
	Env map[string]string

	// Process: the argv, with PortPlaceholder where the port goes.
	Command []string

	// Docker: the image, the engine's port inside the container, and
	// optional limits (0: none).
	Image       string
	Port        int
	MemoryBytes int64
	CPUs        float64

	// HealthPath, when set, makes the runtime watch's health check an HTTP
	// GET of this path on the engine's endpoint (a 2xx or 3xx answer is
	// healthy) instead of a TCP connect.
	HealthPath string
}

// Set is the profiles of one file, by name.
type Set struct {
	byName map[string]Profile
}

// Get returns the profile called name.
func (s *Set) Get(name string) (Profile, bool) {
	if s == nil {
		return Profile{}, false
	}
	p, ok := s.byName[name]
	return p, ok
}

// Names returns the profile names, sorted.
func (s *Set) Names() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.byName))
	for n := range s.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Len is the number of profiles.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.byName)
}

// New builds a Set from profiles already checked by the caller (tests,
// the demo); each is checked again.
func New(profiles ...Profile) (*Set, error) {
	s := &Set{byName: map[string]Profile{}}
	for _, p := range profiles {
		if err := p.Check(); err != nil {
			return nil, err
		}
		if _, dup := s.byName[p.Name]; dup {
			return nil, fmt.Errorf("engine profile %q given twice", p.Name)
		}
		s.byName[p.Name] = p
	}
	return s, nil
}

// Check reports the first thing wrong with p, naming the field.
func (p Profile) Check() error {
	where := "engines." + p.Name
	if !NamePattern.MatchString(p.Name) {
		return fmt.Errorf("engines: profile name %q must match %s", p.Name, NamePattern)
	}
	for k := range p.Env {
		if err := checkEnvName(p.Runtime, k); err != nil {
			return fmt.Errorf("%s.env.%s: %w", where, k, err)
		}
	}
	if p.HealthPath != "" && (!strings.HasPrefix(p.HealthPath, "/") || strings.ContainsAny(p.HealthPath, " \t\r\n?#") || len(p.HealthPath) > 256) {
		return fmt.Errorf("%s.health_path: want an absolute URL path such as /healthz (no spaces, query or fragment; at most 256 bytes), not %q", where, p.HealthPath)
	}
	switch p.Runtime {
	case RuntimeProcess:
		if len(p.Command) == 0 || p.Command[0] == "" {
			return fmt.Errorf("%s.command: required for runtime process: a non-empty list whose first item is the program", where)
		}
		if p.Image != "" || p.Port != 0 || p.MemoryBytes != 0 || p.CPUs != 0 {
			return fmt.Errorf("%s: image, port, memory and cpus are for runtime docker", where)
		}
	case RuntimeDocker:
		if p.Image == "" {
			return fmt.Errorf("%s.image: required for runtime docker", where)
		}
		if p.Port < 1 || p.Port > 65535 {
			return fmt.Errorf("%s.port: required for runtime docker, 1 to 65535", where)
		}
		if p.MemoryBytes < 0 || p.CPUs < 0 {
			return fmt.Errorf("%s: memory and cpus must not be negative", where)
		}
		if len(p.Command) > 0 {
			return fmt.Errorf("%s.command: is for runtime process (a docker engine runs its image's command)", where)
		}
	default:
		return fmt.Errorf("%s.runtime: want process or docker, not %q", where, p.Runtime)
	}
	return nil
}

func checkEnvName(runtime, k string) error {
	if !envName.MatchString(k) {
		return fmt.Errorf("not a valid environment variable name")
	}
	if runtime == RuntimeProcess && k == "PORT" {
		return fmt.Errorf("PORT is set by rtmanager to the engine's port")
	}
	return nil
}

// Load reads and checks the profile file at path.
func Load(path string) (*Set, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read engine profiles: %w", err)
	}
	return Parse(path, b)
}
