package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/jobclient"
)

func cmdSendStop(ctx context.Context, a *app, args []string) error {
	j := newJobFlags("send-stop", "reason", 30*time.Second)
	reason := j.fs.String("reason", "", "why: game_finished, lobby_cancelled, admin_request, idle_timeout or platform_shutdown")
	game, err := j.parse(a, args, func() error {
		if !stopruntime.KnownReason(*reason) {
			return usagef("send-stop: --reason %q: must be one of game_finished, lobby_cancelled, admin_request, idle_timeout, platform_shutdown", *reason)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var typed any
	if !*j.raw {
		typed = runtimejobs.RuntimeStopJobSchema{GameId: runtimejobs.GameIDSchema(game), Reason: *reason, RequestedAtMs: j.requestedAt()}
	}
	return a.sendJob(ctx, false, j, game, typed, j.values(game, *reason))
}

// jobFlags are what send-stop and send-start share: GAME, the job's one
// other field (field), --requested-at-ms, --raw, --wait, --wait-timeout.
type jobFlags struct {
	cmd, field  string
	fs          *flag.FlagSet
	reqAt       *string
	raw, wait   *bool
	waitTimeout *time.Duration
	set         map[string]bool
}

func newJobFlags(cmd, field string, waitDefault time.Duration) *jobFlags {
	j := &jobFlags{cmd: cmd, field: field, fs: flag.NewFlagSet(cmd, flag.ContinueOnError)}
	j.reqAt = j.fs.String("requested-at-ms", "", "requested_at_ms, Unix milliseconds (field omitted when not given)")
	j.raw = j.fs.Bool("raw", false, "write GAME, --"+field+" and --requested-at-ms verbatim, unchecked (to reproduce a bad job)")
	j.wait = j.fs.Bool("wait", false, "wait for the job's result on "+resultsKey+" (sharded: its game's shard) and print it")
	j.waitTimeout = j.fs.Duration("wait-timeout", waitDefault, "how long --wait waits before exit code 1")
	return j
}

// parse reads the command line and returns GAME; unless --raw, GAME, the
// field (checkField) and --requested-at-ms are checked.
func (j *jobFlags) parse(a *app, args []string, checkField func() error) (string, error) {
	pos, err := a.parse(j.fs, args)
	if err != nil {
		return "", err
	}
	if err := wantArgs(j.cmd, pos, 1, "one GAME"); err != nil {
		return "", err
	}
	j.set = visited(j.fs)
	game := pos[0]
	if !*j.raw {
		game = strings.TrimSpace(game)
		if err := stopruntime.ValidateGameID(game); err != nil {
			return "", usagef("%s: %v", j.cmd, err)
		}
		if err := checkField(); err != nil {
			return "", err
		}
		if j.set["requested-at-ms"] {
			if n, err := strconv.ParseInt(*j.reqAt, 10, 64); err != nil || n < 0 {
				return "", usagef("%s: --requested-at-ms %q: must be a non-negative integer", j.cmd, *j.reqAt)
			}
		}
	}
	if *j.wait && *j.waitTimeout <= 0 {
		return "", usagef("%s: --wait-timeout: must be positive", j.cmd)
	}
	return game, nil
}

// requestedAt is --requested-at-ms, checked by parse; nil when not given.
func (j *jobFlags) requestedAt() *int64 {
	if !j.set["requested-at-ms"] {
		return nil
	}
	n, _ := strconv.ParseInt(*j.reqAt, 10, 64)
	return &n
}

// values are the job's stream fields; with --raw, a field not given is
// left out.
func (j *jobFlags) values(game, fieldValue string) []any {
	values := []any{"game_id", game}
	if !*j.raw || j.set[j.field] {
		values = append(values, j.field, fieldValue)
	}
	if j.set["requested-at-ms"] {
		values = append(values, "requested_at_ms", *j.reqAt)
	}
	return values
}

// sendJob appends a job to the job stream of its game's shard (start: the
// start-job stream) through jobclient, as Lobby does, and prints its id or,
// with wait, waits for its result and prints that. typed is the checked job;
// with --raw, values are written verbatim instead.
func (a *app) sendJob(ctx context.Context, start bool, j *jobFlags, game string, typed any, values []any) error {
	kind := "stop"
	if start {
		kind = "start"
	}
	d, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	c := d.c
	jc, err := jobclient.New(c, jobclient.Options{Contract: d.doc, Shards: d.layout.Shards, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return usagef("%v", err)
	}
	defer jc.Close()
	if jc.Layout() != d.layout {
		return fmt.Errorf("jobclient's key layout %+v is not the tool's %+v", jc.Layout(), d.layout)
	}

	var job jobclient.Job
	switch t := typed.(type) {
	case runtimejobs.RuntimeStopJobSchema:
		job, err = jc.SendStop(ctx, t)
	case runtimejobs.RuntimeStartJobSchema:
		job, err = jc.SendStart(ctx, t)
	default: // --raw: the fields as given, to the game's shard
		stream := jc.JobsKey(game, start)
		job.GameID = game
		job.ID, err = c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values}).Result()
		if err != nil {
			err = fmt.Errorf("append %s job to %s: %w", kind, stream, err)
		}
	}
	if err != nil {
		return err
	}
	if !*j.wait {
		if a.g.json {
			return writeJSON(a.stdout, sendView{JobID: job.ID})
		}
		_, err := fmt.Fprintln(a.stdout, job.ID)
		return err
	}
	if !a.g.json {
		fmt.Fprintf(a.stdout, "job %s sent; waiting up to %s for its result\n", job.ID, *j.waitTimeout)
	}
	var res *resultView
	wctx, cancel := context.WithTimeout(ctx, *j.waitTimeout)
	defer cancel()
	r, werr := jc.Await(wctx, job)
	switch {
	case werr == nil:
		res = &resultView{ID: r.EntryID, Shard: d.shardOf(d.layout.ShardOf(game)), RuntimeJobResultSchema: r.RuntimeJobResultSchema}
	case ctx.Err() == nil && errors.Is(werr, context.DeadlineExceeded):
		werr = fmt.Errorf("no result for job %s on %s within %s", job.ID, jc.ResultsKey(game), *j.waitTimeout)
	}
	if a.g.json {
		if err := writeJSON(a.stdout, sendView{JobID: job.ID, Result: res}); err != nil {
			return err
		}
	} else if res != nil {
		if err := printResults(a.stdout, []resultView{*res}, true, d.layout.Sharded); err != nil {
			return err
		}
	}
	return werr
}

// lastID is the id of the newest entry of stream, or "0-0" when it is empty.
func lastID(ctx context.Context, c redis.UniversalClient, stream string) (string, error) {
	msgs, err := c.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("read the last entry of %s: %w", stream, err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}
