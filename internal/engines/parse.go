package engines

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error is a fault in the profile file, at a line, in a field.
type Error struct {
	File  string
	Line  int
	Field string // engines.<name>.<key>, or "" for the file as a whole
	Msg   string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", loc, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
}

func fault(file string, n *yaml.Node, field, format string, a ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: file, Line: line, Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Parse checks the profile file's content; file names it in errors.
func Parse(file string, data []byte) (*Set, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &Error{File: file, Msg: "not YAML: " + err.Error()}
	}
	if len(doc.Content) == 0 {
		return nil, &Error{File: file, Msg: "empty file: want an engines: mapping"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fault(file, root, "", "want a mapping with the key engines")
	}
	var engines *yaml.Node
	for i := 0; i < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Value != "engines" {
			return nil, fault(file, k, k.Value, "unknown key (want engines)")
		}
		engines = v
	}
	if engines == nil {
		return nil, fault(file, root, "engines", "missing")
	}
	if engines.Kind != yaml.MappingNode {
		return nil, fault(file, engines, "engines", "want a mapping of profile names to profiles")
	}
	s := &Set{byName: map[string]Profile{}}
	for i := 0; i < len(engines.Content); i += 2 {
		k, v := engines.Content[i], engines.Content[i+1]
		name := k.Value
		if !NamePattern.MatchString(name) {
			return nil, fault(file, k, "engines."+name, "profile name must match %s", NamePattern)
		}
		if _, dup := s.byName[name]; dup {
			return nil, fault(file, k, "engines."+name, "profile given twice")
		}
		p, err := parseProfile(file, name, v)
		if err != nil {
			return nil, err
		}
		s.byName[name] = p
	}
	if len(s.byName) == 0 {
		return nil, fault(file, engines, "engines", "no profile")
	}
	return s, nil
}

// parseProfile reads one profile mapping; every check names its own line.
func parseProfile(file, name string, n *yaml.Node) (Profile, error) {
	p := Profile{Name: name}
	where := "engines." + name
	if n.Kind != yaml.MappingNode {
		return p, fault(file, n, where, "want a mapping (runtime, command, image, ...)")
	}
	keys := map[string]*yaml.Node{}
	vals := map[string]*yaml.Node{}
	for i := 0; i < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "runtime", "command", "env", "image", "port", "memory", "cpus", "health_path":
		default:
			return p, fault(file, k, where+"."+k.Value, "unknown key (want runtime, command, env, image, port, memory, cpus or health_path)")
		}
		if _, dup := keys[k.Value]; dup {
			return p, fault(file, k, where+"."+k.Value, "given twice")
		}
		keys[k.Value], vals[k.Value] = k, v
	}
	rt, ok := vals["runtime"]
	if !ok {
		return p, fault(file, n, where+".runtime", "missing: want process or docker")
	}
	if rt.Kind != yaml.ScalarNode || (rt.Value != RuntimeProcess && rt.Value != RuntimeDocker) {
		return p, fault(file, rt, where+".runtime", "want process or docker, not %q", rt.Value)
	}
	p.Runtime = rt.Value
	allowed := map[string][]string{
		RuntimeProcess: {"runtime", "command", "env", "health_path"},
		RuntimeDocker:  {"runtime", "image", "port", "env", "memory", "cpus", "health_path"},
	}[p.Runtime]
	for key, k := range keys {
		if !contains(allowed, key) {
			return p, fault(file, k, where+"."+key, "not for runtime %s (allowed: %s)", p.Runtime, strings.Join(allowed, ", "))
		}
	}
	if v, ok := vals["env"]; ok {
		env, err := parseEnv(file, where+".env", p.Runtime, v)
		if err != nil {
			return p, err
		}
		p.Env = env
	}
	if h, ok := vals["health_path"]; ok {
		if h.Kind != yaml.ScalarNode {
			return p, fault(file, h, where+".health_path", "want a path such as /healthz")
		}
		p.HealthPath = h.Value
	}
	var err error
	switch p.Runtime {
	case RuntimeProcess:
		p.Command, err = parseCommand(file, where+".command", n, vals["command"])
	case RuntimeDocker:
		err = parseDocker(file, where, n, vals, &p)
	}
	if err != nil {
		return p, err
	}
	// The same checks New applies: one definition of a valid profile.
	if err := p.Check(); err != nil {
		return p, fault(file, n, "", "%v", err)
	}
	return p, nil
}

func parseEnv(file, where, runtime string, n *yaml.Node) (map[string]string, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fault(file, n, where, "want a mapping of names to values")
	}
	env := map[string]string{}
	for i := 0; i < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if err := checkEnvName(runtime, k.Value); err != nil {
			return nil, fault(file, k, where+"."+k.Value, "%v", err)
		}
		if v.Kind != yaml.ScalarNode {
			return nil, fault(file, v, where+"."+k.Value, "want a plain value")
		}
		if strings.ContainsRune(v.Value, 0) {
			return nil, fault(file, v, where+"."+k.Value, "contains a NUL byte")
		}
		env[k.Value] = v.Value
	}
	return env, nil
}

func parseCommand(file, where string, profile, n *yaml.Node) ([]string, error) {
	if n == nil {
		return nil, fault(file, profile, where, "missing: required for runtime process")
	}
	if n.Kind != yaml.SequenceNode || len(n.Content) == 0 {
		return nil, fault(file, n, where, "want a non-empty list: the program, then its arguments")
	}
	out := make([]string, 0, len(n.Content))
	for i, c := range n.Content {
		if c.Kind != yaml.ScalarNode {
			return nil, fault(file, c, fmt.Sprintf("%s[%d]", where, i), "want a plain string")
		}
		if strings.ContainsRune(c.Value, 0) {
			return nil, fault(file, c, fmt.Sprintf("%s[%d]", where, i), "contains a NUL byte")
		}
		out = append(out, c.Value)
	}
	if out[0] == "" {
		return nil, fault(file, n.Content[0], where+"[0]", "the program must not be empty")
	}
	return out, nil
}

func parseDocker(file, where string, profile *yaml.Node, vals map[string]*yaml.Node, p *Profile) error {
	img, ok := vals["image"]
	if !ok {
		return fault(file, profile, where+".image", "missing: required for runtime docker")
	}
	if img.Kind != yaml.ScalarNode || img.Value == "" || strings.ContainsAny(img.Value, " \t\r\n") {
		return fault(file, img, where+".image", "want an image reference without spaces")
	}
	p.Image = img.Value
	port, ok := vals["port"]
	if !ok {
		return fault(file, profile, where+".port", "missing: the engine's port inside the container")
	}
	v, err := strconv.Atoi(port.Value)
	if port.Kind != yaml.ScalarNode || err != nil || v < 1 || v > 65535 {
		return fault(file, port, where+".port", "want a port number 1 to 65535, not %q", port.Value)
	}
	p.Port = v
	if m, ok := vals["memory"]; ok {
		b, err := ParseBytes(m.Value)
		if m.Kind != yaml.ScalarNode || err != nil {
			return fault(file, m, where+".memory", "want a size such as 512MiB, 1GiB or 268435456 (bytes): %v", err)
		}
		p.MemoryBytes = b
	}
	if c, ok := vals["cpus"]; ok {
		f, err := strconv.ParseFloat(c.Value, 64)
		if c.Kind != yaml.ScalarNode || err != nil || f <= 0 || f > 1024 || math.IsNaN(f) {
			return fault(file, c, where+".cpus", "want a positive number of CPUs such as 0.5 or 2, not %q", c.Value)
		}
		p.CPUs = f
	}
	return nil
}

var sizePattern = regexp.MustCompile(`^([0-9]+)\s*(|B|KiB|MiB|GiB|KB|MB|GB|k|m|g)$`)

// ParseBytes reads a size: bytes, or a number with KiB/MiB/GiB (powers of
// 1024), KB/MB/GB (powers of 1000) or Docker's k/m/g (powers of 1024).
func ParseBytes(s string) (int64, error) {
	m := sizePattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, errors.New("unknown size")
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		return 0, errors.New("too large")
	}
	mult := map[string]int64{"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30,
		"KB": 1e3, "MB": 1e6, "GB": 1e9}[m[2]]
	if n == 0 {
		return 0, errors.New("must be positive")
	}
	if n > math.MaxInt64/mult {
		return 0, errors.New("too large")
	}
	return n * mult, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
