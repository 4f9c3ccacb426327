package main

import (
	"context"
	"flag"
	"strconv"
	"strings"
	"time"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/engines"
	"galaxy/rtmanager/internal/stopruntime"
)

const startJobsKey = runtimejobs.StartJobsChannelPath

// cmdSendStart appends a start job as Lobby does. The engine is a profile
// name of rtmanager's --engines file; whether it exists only rtmanager
// knows (an unknown one is answered invalid_job).
func cmdSendStart(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("send-start", flag.ContinueOnError)
	engine := fs.String("engine", "", "the engine profile to start (a name of rtmanager's --engines file)")
	reqAt := fs.String("requested-at-ms", "", "requested_at_ms, Unix milliseconds (field omitted when not given)")
	raw := fs.Bool("raw", false, "write GAME, --engine and --requested-at-ms verbatim, unchecked (to reproduce a bad job)")
	wait := fs.Bool("wait", false, "wait for the job's result on "+resultsKey+" and print it")
	waitTimeout := fs.Duration("wait-timeout", 60*time.Second, "how long --wait waits before exit code 1")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("send-start", pos, 1, "one GAME"); err != nil {
		return err
	}
	set := visited(fs)
	game := pos[0]
	if !*raw {
		game = strings.TrimSpace(game)
		if err := stopruntime.ValidateGameID(game); err != nil {
			return usagef("send-start: %v", err)
		}
		if !engines.NamePattern.MatchString(*engine) {
			return usagef("send-start: --engine %q: must match %s", *engine, engines.NamePattern)
		}
		if set["requested-at-ms"] {
			if n, err := strconv.ParseInt(*reqAt, 10, 64); err != nil || n < 0 {
				return usagef("send-start: --requested-at-ms %q: must be a non-negative integer", *reqAt)
			}
		}
	}
	if *wait && *waitTimeout <= 0 {
		return usagef("send-start: --wait-timeout: must be positive")
	}
	values := []any{"game_id", game}
	if !*raw || set["engine"] {
		values = append(values, "engine", *engine)
	}
	if set["requested-at-ms"] {
		values = append(values, "requested_at_ms", *reqAt)
	}
	return a.sendJob(ctx, startJobsKey, "start", values, *wait, *waitTimeout)
}
