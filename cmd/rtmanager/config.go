package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/engines"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/redisurl"
	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/service"
	"galaxy/rtmanager/internal/startruntime"
	"galaxy/rtmanager/internal/stopruntime"
)

// usageError is a bad flag or environment value: one line, exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{msg: fmt.Sprintf(format, a...)} }

// config is everything rtmanager is told at start-up.
type config struct {
	RedisURL        string
	Runtime         string
	DockerHost      string
	DockerAPI       string // --docker-api-version
	Workers         int
	Prefetch        int
	MaxWaitingStops int
	Group           string
	// Shards is --shards: how many stream keys each channel is spread
	// over (0: the contract's count).
	Shards          int
	Consumer        string
	StartID         string
	MaxDeliveries   int
	ClaimIdle       time.Duration
	RetryBackoff    time.Duration
	StopGrace       time.Duration
	ShutdownTimeout time.Duration
	HTTPAddr        string
	// Console serves the operator console on HTTPAddr (--console);
	// ConsoleToken allows its replays (--console-token).
	Console      bool
	ConsoleToken string
	LogFormat    string
	LogLevel     slog.Level
	// ProcessUIDs are the uids whose processes the process runtime may
	// stop; ProcessAnyUID lifts that guard (--process-allow-uids any).
	ProcessUIDs   []int
	ProcessAnyUID bool
	// Engines are the engine profiles start jobs may name (--engines);
	// nil when none are configured: every start job is then invalid.
	Engines      *engines.Set
	EnginesFile  string
	StartTimeout time.Duration
	// Watch configures the runtime watch (watch.go).
	Watch watchConfig

	// DockerConcurrency bounds concurrent Docker Engine API requests
	// (--docker-concurrency).
	DockerConcurrency int

	// PprofAddr serves net/http/pprof (--pprof-addr); CPUProfile is a file
	// for a CPU profile of the whole run (--cpu-profile). Both off: "".
	PprofAddr  string
	CPUProfile string
}

// maxPrefetch bounds --prefetch: each job read ahead is held in memory.
const maxPrefetch = 16384

const envPrefix = "RTMANAGER_"

// envName is the environment variable of a flag: --redis-url is
// RTMANAGER_REDIS_URL.
func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// parseConfig reads flags, with RTMANAGER_* environment variables as their
// defaults. It returns flag.ErrHelp after printing help for --help.
func parseConfig(args []string, getenv func(string) string, stdout io.Writer) (config, error) {
	var c config
	var logLevel string
	fs := flag.NewFlagSet("rtmanager", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.RedisURL, "redis-url", "redis://127.0.0.1:6379/0", "Redis to use: redis://[user:password@]host:port/db or rediss:// for TLS; Redis Cluster: redis+cluster://[user:password@]host:port?addr=host:port&addr=... (seed nodes) or rediss+cluster://")
	fs.StringVar(&c.Runtime, "runtime", "docker", "runtime driver: docker, process (local processes) or none (records only)")
	fs.StringVar(&c.DockerHost, "docker-host", "", "Docker daemon address for --runtime docker (default $DOCKER_HOST, else the local socket)")
	fs.StringVar(&c.DockerAPI, "docker-api-version", "", "Docker Engine API version to use, e.g. 1.41, instead of negotiating it with the daemon (default $DOCKER_API_VERSION, else negotiated; 1.40 or later)")
	fs.IntVar(&c.DockerConcurrency, "docker-concurrency", docker.DefaultConcurrency, fmt.Sprintf("most Docker Engine API requests in flight at once (1 to %d); more stops wait for a free slot before their deadline starts", docker.MaxConcurrency))
	fs.IntVar(&c.Workers, "workers", service.DefaultWorkers, "stop jobs handled in parallel (jobs of one game never run at once)")
	fs.IntVar(&c.Prefetch, "prefetch", 0, fmt.Sprintf("stop jobs read ahead per process; 0 means 2×%d + --workers. Lower it when jobs are slow (docker) and several replicas share the stream, raise it for throughput", redisstream.DefaultReadCount))
	fs.IntVar(&c.MaxWaitingStops, "max-waiting-stops", redisstream.DefaultMaxContinuing, "stops waiting for their runtime to exit at once, each without holding a worker; beyond it a stop waits in its worker. 0: every stop waits in its worker (the design before issue 16)")
	fs.StringVar(&c.Group, "group", "", "consumer group of the job stream (default: the contract's, rtmanager)")
	fs.IntVar(&c.Shards, "shards", redisstream.DefaultShards, fmt.Sprintf("shards each job stream is spread over, keys runtime:{rt-N}:… (0 to %d); 0 means the contract's x-redis-shards count. Lobby and every replica must use the same. A single Redis with 1 shard keeps the plain keys; a Redis Cluster always uses the sharded ones", api.MaxShardCount))
	fs.StringVar(&c.Consumer, "consumer", redisstream.DefaultConsumerName(), "this process's consumer name, unique per process")
	fs.StringVar(&c.StartID, "start-id", redisstream.DefaultStartID, "where a new consumer group starts: $ (new jobs only), 0 (whole stream) or an entry id")
	fs.IntVar(&c.MaxDeliveries, "max-deliveries", redisstream.DefaultMaxDeliveries, "deliveries of a job before it is answered with a failure and dead-lettered")
	fs.DurationVar(&c.ClaimIdle, "claim-idle", redisstream.DefaultClaimIdle, "how long a job may sit unacknowledged with a consumer before another claims it")
	fs.DurationVar(&c.RetryBackoff, "retry-backoff", redisstream.DefaultRetryBackoff, "wait before the first retry of a failed job; doubles per retry up to "+redisstream.DefaultMaxRetryBackoff.String())
	fs.DurationVar(&c.StopGrace, "stop-grace", stopruntime.DefaultStopGrace, "grace period a runtime gets to stop before it is killed")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "on SIGINT/SIGTERM, how long in-flight jobs may take to finish")
	fs.StringVar(&c.HTTPAddr, "http-addr", "127.0.0.1:9464", "address of /metrics, /healthz and /readyz (empty: no HTTP server)")
	fs.BoolVar(&c.Console, "console", true, "serve the operator console at / on --http-addr (see docs/operations.md)")
	fs.StringVar(&c.ConsoleToken, "console-token", "", "token that allows replaying dead letters from the console (log in on its /login page, or send Authorization: Bearer); empty: the console is read-only")
	fs.StringVar(&c.LogFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.EnginesFile, "engines", "", "YAML file of the engine profiles start jobs may name (see docs/operations.md); empty: start jobs are refused as invalid")
	fs.DurationVar(&c.StartTimeout, "start-timeout", startruntime.DefaultStartTimeout, "how long a started engine has to accept a TCP connection before the start fails and its runtime is removed")
	c.Watch.flags(fs)
	fs.StringVar(&c.PprofAddr, "pprof-addr", "", "address of Go's profiling endpoints /debug/pprof/ (a listener of its own; keep it on loopback, e.g. 127.0.0.1:6060); empty: off")
	fs.StringVar(&c.CPUProfile, "cpu-profile", "", "file to write a CPU profile of the whole run to, from start-up to shutdown (go tool pprof); empty: none")
	var allowUIDs string
	fs.StringVar(&allowUIDs, "process-allow-uids", "self", "--runtime process stops only processes whose every uid is in this comma-separated list; self is rtmanager's own uid, any lifts the check")

	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if v := getenv(envName(f.Name)); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = usagef("invalid %s: %s", envName(f.Name), redactIfURL(f.Name, v, err))
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printHelp(fs, stdout)
			return c, flag.ErrHelp
		}
		return c, usagef("%s (see rtmanager --help)", err)
	}
	if fs.NArg() > 0 {
		return c, usagef("unexpected argument %q (see rtmanager --help)", fs.Arg(0))
	}
	switch c.Runtime {
	case "docker", "process", "none":
	default:
		return c, usagef("invalid --runtime %q: want docker, process or none", c.Runtime)
	}
	if c.Workers < 1 || c.Workers > 1024 {
		return c, usagef("invalid --workers %d: want 1 to 1024", c.Workers)
	}
	if c.DockerConcurrency < 1 || c.DockerConcurrency > docker.MaxConcurrency {
		return c, usagef("invalid --docker-concurrency %d: want 1 to %d", c.DockerConcurrency, docker.MaxConcurrency)
	}
	if c.Prefetch < 0 || (c.Prefetch > 0 && c.Prefetch < c.Workers) || c.Prefetch > maxPrefetch {
		return c, usagef("invalid --prefetch %d: want 0 (default) or --workers (%d) to %d", c.Prefetch, c.Workers, maxPrefetch)
	}
	if c.MaxWaitingStops < 0 || c.MaxWaitingStops > 1<<20 {
		return c, usagef("invalid --max-waiting-stops %d: want 0 to %d", c.MaxWaitingStops, 1<<20)
	}
	if c.Shards < 0 || c.Shards > api.MaxShardCount {
		return c, usagef("invalid --shards %d: want 0 (the contract's count) to %d", c.Shards, api.MaxShardCount)
	}
	if c.MaxDeliveries < 1 {
		return c, usagef("invalid --max-deliveries %d: want 1 or more", c.MaxDeliveries)
	}
	for name, d := range map[string]time.Duration{"claim-idle": c.ClaimIdle, "retry-backoff": c.RetryBackoff, "stop-grace": c.StopGrace, "shutdown-timeout": c.ShutdownTimeout, "start-timeout": c.StartTimeout} {
		if d <= 0 {
			return c, usagef("invalid --%s %s: want a positive duration", name, d)
		}
	}
	if err := c.Watch.validate(); err != nil {
		return c, err
	}
	if err := redisstream.ValidStartID(c.StartID); err != nil {
		return c, usagef("invalid --start-id: %s", err)
	}
	if c.Consumer == "" {
		return c, usagef("invalid --consumer: must not be empty")
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			return c, usagef("invalid --http-addr %q: want host:port", c.HTTPAddr)
		}
	}
	if c.PprofAddr != "" {
		if _, _, err := net.SplitHostPort(c.PprofAddr); err != nil {
			return c, usagef("invalid --pprof-addr %q: want host:port", c.PprofAddr)
		}
	}
	switch c.LogFormat {
	case "json", "text":
	default:
		return c, usagef("invalid --log-format %q: want json or text", c.LogFormat)
	}
	if err := c.LogLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return c, usagef("invalid --log-level %q: want debug, info, warn or error", logLevel)
	}
	var err error
	if c.ProcessUIDs, c.ProcessAnyUID, err = parseUIDs(allowUIDs, os.Getuid()); err != nil {
		return c, usagef("invalid --process-allow-uids %q: %s", allowUIDs, err)
	}
	if c.EnginesFile != "" {
		// Checked whole before anything runs; the error names the line and
		// the field at fault.
		if c.Engines, err = engines.Load(c.EnginesFile); err != nil {
			return c, usagef("invalid --engines: %s", err)
		}
	}
	return c, nil
}

// parseUIDs reads --process-allow-uids: uids, "self" (own uid), or "any".
func parseUIDs(s string, own int) (uids []int, anyUID bool, err error) {
	for _, f := range strings.Split(s, ",") {
		switch f = strings.TrimSpace(f); f {
		case "any":
			anyUID = true
		case "self":
			uids = append(uids, own)
		default:
			u, err := strconv.ParseUint(f, 10, 31)
			if err != nil {
				return nil, false, fmt.Errorf("%q is not a uid: want uids, self or any, comma-separated", f)
			}
			uids = append(uids, int(u))
		}
	}
	return uids, anyUID, nil
}

func printHelp(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, `rtmanager — the Runtime Manager of the galaxy game platform.

Consumes start jobs from the Redis stream runtime:start_jobs and stop jobs
from runtime:stop_jobs, starts (with an engine profile of --engines) or stops
each game's runtime and writes exactly one result per job to
runtime:job_results.

Usage: rtmanager [flags]

Every flag can also be set by its environment variable; a flag given on the
command line wins.

`)
	fs.VisitAll(func(f *flag.Flag) {
		def := f.DefValue
		if f.Name == "consumer" {
			def = redisstream.DefaultConsumerForm
		}
		fmt.Fprintf(w, "  --%s (%s)\n        %s", f.Name, envName(f.Name), f.Usage)
		if def != "" {
			fmt.Fprintf(w, " (default %q)", def)
		}
		fmt.Fprintln(w)
	})
	fmt.Fprint(w, `
Signals: SIGINT, SIGTERM or SIGHUP stops reading, lets in-flight jobs finish within
--shutdown-timeout (unfinished ones stay pending for the next start) and exits 0.
Exit codes: 0 clean shutdown, 1 run-time failure, 2 bad flag or value,
--http-addr not bindable, an unsupported Docker API version, or a Redis
configuration no retry can fix (credentials, database index, TLS).
`)
}

// redactIfURL keeps a password out of an error about a bad --redis-url.
func redactIfURL(flagName, value string, err error) string {
	if flagName == "redis-url" {
		return redisurl.Redacted(value)
	}
	return err.Error()
}
