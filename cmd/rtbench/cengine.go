package main

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// engineC is the source of the C engines (--mass-engine c).
//
//go:embed engine/engine.c
var engineC []byte

// Engine kinds of --mass-engine.
const (
	engineAuto     = "auto"
	engineKindC    = "c"
	engineKindBash = "bash"
)

// buildCEngine compiles engine.c with $CC (default cc) into dir, statically
// when the C library allows it: a static engine maps less, so forking and
// ending thousands of them costs the machine less.
func buildCEngine(dir string) (string, error) {
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	if _, err := exec.LookPath(cc); err != nil {
		return "", fmt.Errorf("no C compiler (%s): %w", cc, err)
	}
	src := filepath.Join(dir, "engine.c")
	if err := os.WriteFile(src, engineC, 0o600); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "engine")
	var lastErr error
	for _, static := range []bool{true, false} {
		args := []string{"-O2", "-o", bin, src}
		if static {
			args = append([]string{"-static"}, args...)
		}
		out, err := exec.Command(cc, args...).CombinedOutput()
		if err == nil {
			return bin, nil
		}
		lastErr = fmt.Errorf("%s %s: %w: %s", cc, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return "", lastErr
}

// massEngines resolves --mass-engine: c builds the C engine into a
// temporary directory that cleanup removes; auto is c when a C compiler
// works, bash otherwise (said on progress).
func massEngines(want string, progress func(string, ...any)) (kind engines, cleanup func(), err error) {
	cleanup = func() {}
	if want == engineKindBash {
		return engines{kind: engineKindBash}, cleanup, nil
	}
	dir, err := os.MkdirTemp("", "rtbench-engine-")
	if err != nil {
		return kind, cleanup, err
	}
	cleanup = func() { _ = os.RemoveAll(dir) }
	bin, err := buildCEngine(dir)
	switch {
	case err == nil:
		return engines{kind: engineKindC, cEngine: bin}, cleanup, nil
	case want == engineAuto:
		progress("mass stop: C engine not built (%v); using bash engines", err)
		return engines{kind: engineKindBash}, cleanup, nil
	default:
		return kind, cleanup, fmt.Errorf("--mass-engine c: %w", err)
	}
}
