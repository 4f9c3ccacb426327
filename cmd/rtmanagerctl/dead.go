package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/redisstream"
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
		if ids, err = allIDs(ctx, c, deadKey); err != nil {
			return err
		}
	}
	done := make([]replayView, 0, len(ids))
	var rerr error
	for _, id := range ids {
		v, err := replayOne(ctx, c, id)
		if *all && errors.Is(err, errDeadGone) {
			continue // replayed by someone else since the snapshot
		}
		if *all && errors.Is(err, errDeadTruncated) {
			// Left on the dead stream; the others are still replayed, and
			// the command fails at the end.
			rerr = errors.Join(rerr, err)
			continue
		}
		if err != nil {
			rerr = errors.Join(rerr, err)
			break
		}
		done = append(done, v)
	}
	var perr error
	if a.g.json {
		perr = writeJSON(a.stdout, done)
	} else {
		perr = printReplays(a.stdout, done)
	}
	return errors.Join(rerr, perr)
}

func allIDs(ctx context.Context, c redis.UniversalClient, stream string) ([]string, error) {
	var ids []string
	start := "-"
	for {
		msgs, err := c.XRangeN(ctx, stream, start, "+", 500).Result()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", stream, err)
		}
		for _, m := range msgs {
			ids = append(ids, m.ID)
		}
		if len(msgs) < 500 {
			return ids, nil
		}
		start = "(" + msgs[len(msgs)-1].ID
	}
}

// replayOne moves one dead letter back to the job stream: the XADD of its
// original fields and the XDEL of the dead letter run in one MULTI/EXEC,
// under WATCH of the dead stream, so a replay is never lost or doubled (two
// operators replaying the same letter: one wins, the other finds it gone).
func replayOne(ctx context.Context, c redis.UniversalClient, deadID string) (replayView, error) {
	const attempts = 20
	for i := 0; i < attempts; i++ {
		var v replayView
		err := c.Watch(ctx, func(tx *redis.Tx) error {
			msgs, err := tx.XRangeN(ctx, deadKey, deadID, deadID, 1).Result()
			if err != nil {
				return fmt.Errorf("read dead letter %s: %w", deadID, err)
			}
			if len(msgs) == 0 {
				return errDeadGone
			}
			dl := redisstream.ReadDeadLetter(msgs[0].Values)
			if dl.Truncated != "" {
				// The broker cut this copy to its bounds: replaying it would
				// send a job that is not the one Lobby wrote.
				return fmt.Errorf("%w (%s: %s); not replayed", errDeadTruncated, redisstream.FieldDeadTruncated, dl.Truncated)
			}
			fields := originalFields(dl.Original)
			if len(fields) == 0 {
				return fmt.Errorf("dead letter %s has no original fields to replay", deadID)
			}
			var add *redis.StringCmd
			if _, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				add = p.XAdd(ctx, &redis.XAddArgs{Stream: jobsKey, Values: flatten(fields)})
				p.XDel(ctx, deadKey, deadID)
				return nil
			}); err != nil {
				return err
			}
			v = replayView{DeadID: deadID, OriginalID: dl.OriginalID, JobID: add.Val()}
			return nil
		}, deadKey)
		if errors.Is(err, redis.TxFailedErr) {
			continue // the dead stream changed under WATCH; read again
		}
		if err != nil {
			return replayView{}, fmt.Errorf("replay dead letter %s: %w", deadID, err)
		}
		return v, nil
	}
	return replayView{}, fmt.Errorf("replay dead letter %s: the dead stream kept changing; try again", deadID)
}

// errDeadTruncated says a dead letter was cut to the broker's bounds.
var errDeadTruncated = errors.New("the dead letter does not carry its job whole")

// errDeadGone says a dead letter is not (or no longer) on the dead stream.
var errDeadGone = fmt.Errorf("not on %s (already replayed?)", deadKey)

type field struct{ name, value string }

// originalFields orders a dead letter's original entry
// (redisstream.ReadDeadLetter): the contract's fields first, the rest
// sorted by name.
func originalFields(original map[string]string) []field {
	out := make([]field, 0, len(original))
	for name, v := range original {
		out = append(out, field{name, v})
	}
	rank := func(n string) int {
		switch n {
		case "game_id":
			return 0
		case "reason":
			return 1
		case "requested_at_ms":
			return 2
		}
		return 3
	}
	sort.Slice(out, func(i, j int) bool {
		ri, rj := rank(out[i].name), rank(out[j].name)
		if ri != rj {
			return ri < rj
		}
		return out[i].name < out[j].name
	})
	return out
}

func flatten(fields []field) []any {
	out := make([]any, 0, 2*len(fields))
	for _, f := range fields {
		out = append(out, f.name, f.value)
	}
	return out
}
