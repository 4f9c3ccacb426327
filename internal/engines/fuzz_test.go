package engines_test

import (
	"errors"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"

	"galaxy/rtmanager/internal/engines"
)

// yamlOf writes a Set back as a profile file.
func yamlOf(t *testing.T, s *engines.Set) []byte {
	t.Helper()
	profiles := map[string]map[string]any{}
	for _, name := range s.Names() {
		p, _ := s.Get(name)
		m := map[string]any{"runtime": p.Runtime}
		if p.Env != nil {
			m["env"] = p.Env
		}
		if p.HealthPath != "" {
			m["health_path"] = p.HealthPath
		}
		if p.Command != nil {
			m["command"] = p.Command
		}
		if p.Image != "" {
			m["image"], m["port"] = p.Image, p.Port
		}
		if p.MemoryBytes != 0 {
			m["memory"] = p.MemoryBytes
		}
		if p.CPUs != 0 {
			m["cpus"] = p.CPUs
		}
		profiles[name] = m
	}
	b, err := yaml.Marshal(map[string]any{"engines": profiles})
	if err != nil {
		t.Fatalf("write %v back: %v", s.Names(), err)
	}
	return b
}

// FuzzParse: the operator's profile file. Whatever its bytes, Parse gives
// a Set or an *Error naming the file, never a panic; every profile it
// gives passes New's checks (one definition of a valid profile), and the
// Set written back as YAML parses into the very same profiles.
func FuzzParse(f *testing.F) {
	f.Add(example)
	f.Add("engines:\n  a:\n    runtime: process\n    command: [x, '{port}']\n    health_path: /healthz\n    env: {A: '1', B: \"\\u0085\"}\n")
	f.Add("engines:\n  c:\n    runtime: docker\n    image: x\n    port: 70000\n    memory: 9223372036854775807k\n    cpus: NaN\n")
	f.Add("engines:\n  c:\n    runtime: docker\n    image: x\n    port: '+80'\n    memory: ' 1 GB '\n    cpus: 1e-300\n")
	f.Add("engines: &a\n  x: *a\n")
	f.Add("engines:\n  a: {runtime: process, command: [sh], env: {PORT: '1'}}\n  a: {runtime: process, command: [sh]}\n")
	f.Add("x: 1\n---\nengines: {}\n")
	f.Fuzz(func(t *testing.T, data string) {
		s, err := engines.Parse("f.yaml", []byte(data))
		if err != nil {
			var e *engines.Error
			if !errors.As(err, &e) || e.File != "f.yaml" || s != nil {
				t.Fatalf("%q: error %T %v, set %v", data, err, err, s)
			}
			return
		}
		if s.Len() == 0 {
			t.Fatalf("%q: an empty set", data)
		}
		var all []engines.Profile
		for _, name := range s.Names() {
			p, ok := s.Get(name)
			if !ok || p.Name != name || !engines.NamePattern.MatchString(name) {
				t.Fatalf("%q: profile %q read as %+v", data, name, p)
			}
			all = append(all, p)
		}
		if _, err := engines.New(all...); err != nil {
			t.Fatalf("%q: parsed profiles New refuses: %v", data, err)
		}
		back := yamlOf(t, s)
		again, err := engines.Parse("back.yaml", back)
		if err != nil {
			t.Fatalf("%q written back as %q does not parse: %v", data, back, err)
		}
		for _, p := range all {
			q, _ := again.Get(p.Name)
			if !reflect.DeepEqual(p, q) {
				t.Fatalf("%q written back as %q: %+v read as %+v", data, back, p, q)
			}
		}
		if again.Len() != s.Len() {
			t.Fatalf("%q written back as %q: %d profiles, then %d", data, back, s.Len(), again.Len())
		}
	})
}
