// Command rtmanagerctl is the operator CLI of rtmanager: it sends stop jobs
// as Lobby does, reads results, records and reads runtimes, inspects the
// consumer group and replays dead-lettered jobs. See docs/operations.md.
//
// Exit codes: 0 success, 1 failure (Redis unreachable, nothing found, a
// wait that timed out), 2 bad usage or a Redis authentication error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"galaxy/rtmanager/internal/redisclient"
	"galaxy/rtmanager/internal/redisurl"
)

const (
	prog            = "rtmanagerctl"
	envRedisURL     = "RTMANAGER_REDIS_URL"
	defaultRedisURL = "redis://127.0.0.1:6379/0"
	defaultTimeout  = 5 * time.Second
)

func main() {
	// go-redis logs dial failures on its own; the tool reports them once.
	redis.SetLogger(quietLogger{})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// globals are the flags every command accepts, before or after its name.
type globals struct {
	redisURL string
	json     bool
	timeout  time.Duration
	shards   int
}

// app is one invocation of the tool.
type app struct {
	g      globals
	stdout io.Writer
	stderr io.Writer
	// secrets are the strings never to print (the Redis password, raw and
	// escaped); filled when the URL is parsed.
	secrets []string
	// sharded says the deployment's layout is sharded (deployment): the
	// tables then show each entry's shard.
	sharded bool
}

// usageError is a bad command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// authError is a refused Redis authentication: exit code 2.
type authError struct{ err error }

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// command is one sub-command of the tool.
type command struct {
	name    string
	args    string // synopsis after the name
	summary string
	run     func(ctx context.Context, a *app, args []string) error
}

func commands() []command {
	return []command{
		{"send-stop", "GAME --reason R [--requested-at-ms N] [--raw] [--wait] [--wait-timeout D]",
			"append a stop job to runtime:stop_jobs as Lobby does; --wait prints its result", cmdSendStop},
		{"send-start", "GAME --engine NAME [--requested-at-ms N] [--raw] [--wait] [--wait-timeout D]",
			"append a start job to runtime:start_jobs as Lobby does; --wait prints its result", cmdSendStart},
		{"results", "[--count N] [--follow]", "print the latest job results (oldest first); --follow keeps printing", cmdResults},
		{"events", "[--count N] [--follow]", "print the latest runtime events (engines that exited or changed health on their own); --follow keeps printing", cmdEvents},
		{"register", "GAME --container ID --endpoint HOST:PORT --runtime docker|process|none [--pid PID]",
			"record a running runtime for a game", cmdRegister},
		{"status", "GAME", "print the runtime record of a game", cmdStatus},
		{"pending", "[--group G] [--count N]", "show the consumer group's pending jobs and lag", cmdPending},
		{"dead", "list [--count N] | replay ID... | replay SHARD/ID... | replay --all",
			"list dead-lettered jobs, or put them back on the job stream", cmdDead},
	}
}

// run is the whole tool; it returns the exit code.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	a := &app{stdout: stdout, stderr: stderr}
	a.g.redisURL = getenv(envRedisURL)
	if a.g.redisURL == "" {
		a.g.redisURL = defaultRedisURL
	}
	a.g.timeout = defaultTimeout

	fs := flag.NewFlagSet(prog, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.addGlobalFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.printToolHelp(stdout, fs)
			return 0
		}
		return a.fail(usagef("%v", err))
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return a.fail(usagef("no command given"))
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		if len(rest) == 0 {
			a.printToolHelp(stdout, fs)
			return 0
		}
		name, rest = rest[0], append(rest[1:len(rest):len(rest)], "--help")
	}
	for _, c := range commands() {
		if c.name == name {
			return a.fail(c.run(ctx, a, rest))
		}
	}
	return a.fail(usagef("unknown command %q", name))
}

// fail prints err (redacted, one line) and returns its exit code.
func (a *app) fail(err error) int {
	if err == nil || errors.Is(err, errHelpShown) {
		return 0
	}
	var ue *usageError
	code := 1
	switch {
	case errors.As(err, &ue):
		code = 2
	case errors.As(err, new(*authError)):
		code = 2
	}
	msg := a.redact(err.Error())
	msg = strings.Join(strings.Fields(msg), " ") // one line, whatever Redis said
	if code == 2 && ue != nil {
		msg += " (see '" + prog + " help')"
	}
	fmt.Fprintf(a.stderr, "%s: %s\n", prog, msg)
	return code
}

func (a *app) redact(s string) string {
	for _, sec := range a.secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
}

func (a *app) addGlobalFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.g.redisURL, "redis-url", a.g.redisURL,
		"Redis URL: redis:// or rediss://, or a cluster's redis+cluster://host:port?addr=host:port&addr=… (rediss+cluster:// for TLS); credentials allowed (env "+envRedisURL+")")
	// The default may come from the environment: never show its password.
	fs.Lookup("redis-url").DefValue = redactURL(a.g.redisURL)
	fs.BoolVar(&a.g.json, "json", a.g.json, "machine-readable JSON output")
	fs.DurationVar(&a.g.timeout, "timeout", a.g.timeout, "timeout of connecting and of each Redis call")
	fs.IntVar(&a.g.shards, "shards", a.g.shards, "shard count S of the deployment, as rtmanager's --shards (0: the contract's x-redis-shards count)")
}

func (a *app) printToolHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "%s is the operator CLI of rtmanager.\n\nUsage:\n  %s [global flags] COMMAND [arguments] [flags]\n\nCommands:\n", prog, prog)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "  %-10s %s\n", "help", "help [COMMAND]: this text, or a command's")
	fmt.Fprintf(w, "\nGlobal flags (also accepted after the command):\n")
	printDefaults(w, fs)
	fmt.Fprintf(w, "\nExit codes: 0 success, 1 failure (Redis unreachable, nothing found, wait timed out),\n2 bad usage or Redis authentication refused.\n")
}

func printDefaults(w io.Writer, fs *flag.FlagSet) {
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// helpFor returns the synopsis and summary of a command ("dead list" too).
func helpFor(name string) (synopsis, summary string) {
	switch name {
	case "dead list":
		return "[--count N]", "list dead-lettered stop jobs (" + deadKey + "; with --shards or on a cluster, every shard's), oldest first"
	case "dead replay":
		return "ID... | SHARD/ID... | --all", "put dead-lettered jobs back on " + jobsKey + " (sharded: the job stream of the dead letter's shard; " +
			"XADD of the original fields and XDEL of the dead letter in one MULTI/EXEC) and print the new job ids"
	}
	for _, c := range commands() {
		if c.name == name {
			return c.args, c.summary
		}
	}
	return "", ""
}

// errHelpShown says a command printed its help; the exit code is 0.
var errHelpShown = errors.New("help shown")

// parse parses a command's flags and positional arguments, which may be
// mixed: `status g1 --json` and `status --json g1` are the same. It returns
// errHelpShown after printing the help for -h/--help.
func (a *app) parse(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	a.addGlobalFlags(fs)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				synopsis, summary := helpFor(fs.Name())
				fmt.Fprintf(a.stdout, "Usage: %s %s %s\n\n%s.\n\nFlags:\n", prog, fs.Name(), synopsis, summary)
				printDefaults(a.stdout, fs)
				return nil, errHelpShown
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// connect opens a client for --redis-url and checks it with PING: a
// single-node client for redis:// and rediss://, a cluster client for
// redis+cluster:// and rediss+cluster://. The password is never part of an
// error.
func (a *app) connect(ctx context.Context) (redis.UniversalClient, error) {
	raw := a.g.redisURL
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse errors quote the whole URL, password included.
		return nil, usagef("--redis-url: not a valid URL")
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		a.secrets = append(a.secrets, pw, url.QueryEscape(pw), url.PathEscape(pw),
			strings.ReplaceAll(url.QueryEscape(pw), "+", "%20"))
	}
	if a.g.timeout <= 0 {
		return nil, usagef("--timeout: must be positive")
	}
	var c redis.UniversalClient
	switch {
	case redisurl.IsCluster(raw):
		opt, err := redisurl.ParseCluster(raw)
		if err != nil {
			return nil, usagef("--redis-url: %s", a.redact(err.Error()))
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = a.g.timeout, a.g.timeout, a.g.timeout
		// No retry by the node clients; the cluster client still follows
		// MOVED and retries a connection error as a redirect (MaxRedirects),
		// which it needs to find a promoted master.
		opt.MaxRetries = -1
		opt.DialerRetries = 1
		opt.PoolSize = 2
		opt.DisableIdentity = true
		opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		cc := redis.NewClusterClient(opt)
		redisclient.FollowFailover(cc)
		c = cc
	case u.Scheme == "redis" || u.Scheme == "rediss":
		opt, err := redis.ParseURL(raw)
		if err != nil {
			return nil, usagef("--redis-url: %s", a.redact(err.Error()))
		}
		opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = a.g.timeout, a.g.timeout, a.g.timeout
		opt.MaxRetries = -1 // never resend a write (an XADD would be doubled)
		opt.DialerRetries = 1
		opt.PoolSize = 2
		opt.DisableIdentity = true
		opt.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
		c = redis.NewClient(opt)
	default:
		return nil, usagef("--redis-url: scheme %q: want redis, rediss, redis+cluster or rediss+cluster", u.Scheme)
	}
	pctx, cancel := context.WithTimeout(ctx, a.g.timeout)
	defer cancel()
	if err := c.Ping(pctx).Err(); err != nil {
		_ = c.Close()
		where := u.Redacted()
		switch {
		case isAuthError(err):
			return nil, &authError{fmt.Errorf("authenticate to redis at %s: %w", where, err)}
		case strings.Contains(err.Error(), "cluster support disabled"):
			return nil, usagef("--redis-url is a cluster URL but %s is not in cluster mode: use redis:// (rediss:// for TLS)", where)
		}
		return nil, fmt.Errorf("connect to redis at %s: %w", where, err)
	}
	if single, ok := c.(*redis.Client); ok {
		// A single-node client on a cluster node gets MOVED for most keys.
		info, err := single.Info(pctx, "cluster").Result()
		if err == nil && strings.Contains(info, "cluster_enabled:1") {
			_ = c.Close()
			addr := single.Options().Addr
			return nil, usagef("--redis-url reaches %s, a Redis Cluster node: use %s+cluster://%s?addr=host:port&addr=… (the seed nodes of the cluster)", addr, u.Scheme, addr)
		}
	}
	return c, nil
}

// redactURL hides the password of a URL; an unparsable one is hidden whole.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func isAuthError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "WRONGPASS") || strings.Contains(s, "NOAUTH") ||
		strings.Contains(s, "without any password configured")
}
