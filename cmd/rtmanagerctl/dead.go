package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"galaxy/rtmanager/internal/deadletters"
)

func cmdDead(ctx context.Context, a *app, args []string) error {
	if len(args) == 0 {
		return usagef("dead: want a subcommand: list or replay")
	}
	switch args[0] {
	case "list":
		return cmdDeadList(ctx, a, args[1:])
	case "replay":
		return cmdDeadReplay(ctx, a, args[1:])
	case "-h", "-help", "--help":
		fs := flag.NewFlagSet("dead", flag.ContinueOnError)
		_, err := a.parse(fs, args)
		return err
	default:
		return usagef("dead: unknown subcommand %q: want list or replay", args[0])
	}
}

func cmdDeadList(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("dead list", flag.ContinueOnError)
	count := fs.Int64("count", 100, "how many dead letters to list, oldest first")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("dead list", pos, 0, "no arguments"); err != nil {
		return err
	}
	if *count <= 0 {
		return usagef("dead list: --count: must be positive")
	}
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	msgs, err := c.XRangeN(ctx, deadKey, "-", "+", *count).Result()
	if err != nil {
		return fmt.Errorf("read %s: %w", deadKey, err)
	}
	total, err := c.XLen(ctx, deadKey).Result()
	if err != nil {
		return fmt.Errorf("count %s: %w", deadKey, err)
	}
	views := make([]deadView, 0, len(msgs))
	for _, m := range msgs {
		views = append(views, toDeadView(m))
	}
	if a.g.json {
		return writeJSON(a.stdout, views)
	}
	return printDead(a.stdout, views, total)
}

func cmdDeadReplay(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("dead replay", flag.ContinueOnError)
	all := fs.Bool("all", false, "replay every dead letter present when the command starts")
	ids, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if *all == (len(ids) > 0) {
		return usagef("dead replay: give dead-letter IDs or --all (not both)")
	}
	for _, id := range ids {
		if !entryIDPattern.MatchString(id) {
			return usagef("dead replay: %q is not a stream entry id (like 1764160000000-0)", id)
		}
	}
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if *all {
		// A snapshot of the ids: a replayed job that is dead-lettered again
		// meanwhile is not replayed twice by this run.
		if ids, err = deadletters.AllIDs(ctx, c, deadKey); err != nil {
			return err
		}
	}
	done := make([]replayView, 0, len(ids))
	var rerr error
	for _, id := range ids {
		r, err := deadletters.Replay(ctx, c, deadletters.Pair{Dead: deadKey, Jobs: jobsKey}, id)
		if *all && errors.Is(err, deadletters.ErrGone) {
			continue // replayed by someone else since the snapshot
		}
		if *all && errors.Is(err, deadletters.ErrTruncated) {
			// Left on the dead stream; the others are still replayed, and
			// the command fails at the end.
			rerr = errors.Join(rerr, err)
			continue
		}
		if err != nil {
			rerr = errors.Join(rerr, err)
			break
		}
		done = append(done, replayView{DeadID: r.DeadID, OriginalID: r.OriginalID, JobID: r.JobID})
	}
	var perr error
	if a.g.json {
		perr = writeJSON(a.stdout, done)
	} else {
		perr = printReplays(a.stdout, done)
	}
	return errors.Join(rerr, perr)
}
