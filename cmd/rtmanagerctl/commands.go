package main

import (
	"flag"
	"regexp"
	"strconv"
	"time"

	"galaxy/rtmanager/gen/runtimejobs"
)

// What the commands share. Each command group has a file of its own:
// sendstop.go, results.go, runtime.go (register and status), pending.go and
// dead.go; main.go lists them (commands).

// Stream keys (the contract's channel addresses) and the default group.
const (
	jobsKey      = runtimejobs.StopJobsChannelPath
	resultsKey   = runtimejobs.JobResultsChannelPath
	deadKey      = runtimejobs.StopJobsDeadChannelPath
	defaultGroup = "rtmanager" // x-redis-stream.group of stopJobs
	// pollBlock bounds one blocking XREAD, so a cancelled context (SIGINT)
	// is noticed within it.
	pollBlock = time.Second
)

var entryIDPattern = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

func wantArgs(cmd string, pos []string, n int, what string) error {
	if len(pos) != n {
		return usagef("%s: want %s, got %d argument(s)", cmd, what, len(pos))
	}
	return nil
}

func visited(fs *flag.FlagSet) map[string]bool {
	m := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { m[f.Name] = true })
	return m
}

func str(values map[string]any, name string) string {
	s, _ := values[name].(string)
	return s
}

func toInt(values map[string]any, name string) int64 {
	n, _ := strconv.ParseInt(str(values, name), 10, 64)
	return n
}
