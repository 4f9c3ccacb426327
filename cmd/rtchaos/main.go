// Command rtchaos is rtmanager's resilience suite: it drives the built
// rtmanager and rtmanagerctl binaries against a private redis-server
// (appendonly yes, appendfsync always), breaks things on purpose — kill -9
// of rtmanager, kill -9 of Redis, a replica lost mid-run, a flood of
// malformed jobs, wrong credentials — and then reads the job, result and
// dead-letter streams to check that every job got exactly one result.
//
// Each scenario prints its figures and PASS or FAIL; rtchaos exits 1 when
// a guarantee broke, 2 on bad usage. `make test-resilience` builds the
// binaries and runs it; docs/reliability.md explains the scenarios.
//
// All traffic goes to 127.0.0.1. Every wait is bounded.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

type options struct {
	binDir    string
	scenarios []string
	seed      uint64
	jobs      int
	games     int
	claimIdle time.Duration
	workers   int
	keep      bool
	timeout   time.Duration
}

var allScenarios = []string{"kill", "redis", "replicas", "poison", "credentials", "starts", "cluster"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// Redis is taken away on purpose: go-redis's own dial errors are noise.
	redis.SetLogger(quietRedis{})
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var o options
	var list string
	fs := flag.NewFlagSet("rtchaos", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.binDir, "bin-dir", "", "directory holding the built rtmanager and rtmanagerctl (default: build them into a temporary directory)")
	fs.StringVar(&list, "scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run: "+strings.Join(allScenarios, ", "))
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the random kill moments and job order (default: from the clock; printed)")
	fs.IntVar(&o.jobs, "jobs", 20000, "stop jobs of the kill -9 scenario (the others use a fraction)")
	fs.IntVar(&o.games, "games", 500, "running games the jobs are spread over")
	fs.DurationVar(&o.claimIdle, "claim-idle", 2*time.Second, "rtmanager --claim-idle: how soon a dead consumer's jobs are claimed")
	fs.IntVar(&o.workers, "workers", 8, "rtmanager --workers")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (process logs) even when everything passed")
	fs.DurationVar(&o.timeout, "timeout", 8*time.Minute, "bound of the whole run: a guard against a hang (the scenarios take about 3 min on a quiet 2-core machine, more on a loaded one)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "rtchaos: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !contains(allScenarios, s) {
			fmt.Fprintf(stderr, "rtchaos: unknown scenario %q (want %s)\n", s, strings.Join(allScenarios, ", "))
			return 2
		}
		o.scenarios = append(o.scenarios, s)
	}
	if o.jobs < 100 || o.games < 1 || o.games > o.jobs || o.workers < 1 || o.claimIdle <= 0 {
		fmt.Fprintln(stderr, "rtchaos: want --jobs ≥ 100, 1 ≤ --games ≤ --jobs, --workers ≥ 1, --claim-idle > 0")
		return 2
	}
	if o.seed == 0 {
		o.seed = uint64(time.Now().UnixNano())
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	work, err := os.MkdirTemp("", "rtchaos-")
	if err != nil {
		fmt.Fprintln(stderr, "rtchaos:", err)
		return 1
	}
	if o.binDir == "" {
		o.binDir = filepath.Join(work, "bin")
		fmt.Fprintln(stdout, "building rtmanager and rtmanagerctl …")
		out, err := exec.CommandContext(ctx, "go", "build", "-o", o.binDir+"/", "./cmd/rtmanager", "./cmd/rtmanagerctl").CombinedOutput()
		if err != nil {
			fmt.Fprintf(stderr, "rtchaos: go build: %v\n%s", err, out)
			return 1
		}
	}
	for _, b := range []string{"rtmanager", "rtmanagerctl"} {
		if _, err := os.Stat(filepath.Join(o.binDir, b)); err != nil {
			fmt.Fprintf(stderr, "rtchaos: %s not found in --bin-dir %s\n", b, o.binDir)
			return 2
		}
	}
	c, err := loadContract()
	if err != nil {
		fmt.Fprintln(stderr, "rtchaos: load contract:", err)
		return 1
	}
	e := &env{binDir: o.binDir, work: work, ctx: ctx}
	defer e.killAll()

	fmt.Fprintf(stdout, "rtchaos: seed %d, %d jobs over %d games, --claim-idle %s, --workers %d, logs in %s\n",
		o.seed, o.jobs, o.games, o.claimIdle, o.workers, work)
	rng := rand.New(rand.NewPCG(o.seed, o.seed^0x9e3779b97f4a7c15))
	var all []*figures
	t0 := time.Now()
	for _, name := range o.scenarios {
		f := newFigures(name)
		st := time.Now()
		func() {
			defer func() {
				if r := recover(); r != nil {
					f.fail("panic: %v", r)
				}
			}()
			scenarios[name](ctx, e, c, o, rng, f)
		}()
		if ctx.Err() != nil {
			f.fail("run bound reached: %v", ctx.Err())
		}
		f.add("scenario time", round(time.Since(st)))
		f.print(stdout)
		all = append(all, f)
		e.killAll()
	}
	failed := 0
	fmt.Fprintf(stdout, "\nsummary (seed %d, %s):\n", o.seed, round(time.Since(t0)))
	for _, f := range all {
		verdict := "PASS"
		if len(f.failures) > 0 {
			verdict = "FAIL"
			failed++
		}
		fmt.Fprintf(stdout, "  %-12s %s\n", f.name, verdict)
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "rtchaos: %d scenario(s) failed; process logs kept in %s\n", failed, work)
		return 1
	}
	if o.keep {
		fmt.Fprintf(stdout, "process logs kept in %s\n", work)
	} else {
		_ = os.RemoveAll(work)
	}
	return 0
}

var scenarios = map[string]func(context.Context, *env, *contract, options, *rand.Rand, *figures){
	"kill":        scenarioKill,
	"redis":       scenarioRedis,
	"replicas":    scenarioReplicas,
	"poison":      scenarioPoison,
	"credentials": scenarioCredentials,
	"starts":      scenarioStarts,
	"cluster":     scenarioCluster,
}

// figures is what a scenario reports, in order, and the guarantees it saw
// broken.
type figures struct {
	name     string
	rows     [][2]string
	failures []string
}

func newFigures(name string) *figures { return &figures{name: name} }

func (f *figures) add(k string, v any) {
	f.rows = append(f.rows, [2]string{k, fmt.Sprint(v)})
}

func (f *figures) fail(format string, a ...any) {
	f.failures = append(f.failures, fmt.Sprintf(format, a...))
}

// expect records a guarantee: a failure when !ok.
func (f *figures) expect(ok bool, format string, a ...any) {
	if !ok {
		f.fail(format, a...)
	}
}

func (f *figures) print(w io.Writer) {
	fmt.Fprintf(w, "\n== %s\n", f.name)
	width := 0
	for _, r := range f.rows {
		width = max(width, len(r[0]))
	}
	for _, r := range f.rows {
		fmt.Fprintf(w, "  %-*s  %s\n", width, r[0], r[1])
	}
	if len(f.failures) == 0 {
		fmt.Fprintf(w, "  PASS\n")
		return
	}
	for _, x := range f.failures {
		fmt.Fprintf(w, "  FAIL: %s\n", x)
	}
}

func round(d time.Duration) time.Duration {
	switch {
	case d > 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d > time.Second:
		return d.Round(10 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}
