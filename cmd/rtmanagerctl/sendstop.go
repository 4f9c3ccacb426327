package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/stopruntime"
)

func cmdSendStop(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("send-stop", flag.ContinueOnError)
	reason := fs.String("reason", "", "why: game_finished, lobby_cancelled, admin_request, idle_timeout or platform_shutdown")
	reqAt := fs.String("requested-at-ms", "", "requested_at_ms, Unix milliseconds (field omitted when not given)")
	raw := fs.Bool("raw", false, "write GAME, --reason and --requested-at-ms verbatim, unchecked (to reproduce a bad job)")
	wait := fs.Bool("wait", false, "wait for the job's result on "+resultsKey+" and print it")
	waitTimeout := fs.Duration("wait-timeout", 30*time.Second, "how long --wait waits before exit code 1")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("send-stop", pos, 1, "one GAME"); err != nil {
		return err
	}
	set := visited(fs)
	game := pos[0]
	if !*raw {
		game = strings.TrimSpace(game)
		if err := stopruntime.ValidateGameID(game); err != nil {
			return usagef("send-stop: %v", err)
		}
		if !stopruntime.KnownReason(*reason) {
			return usagef("send-stop: --reason %q: must be one of game_finished, lobby_cancelled, admin_request, idle_timeout, platform_shutdown", *reason)
		}
		if set["requested-at-ms"] {
			if n, err := strconv.ParseInt(*reqAt, 10, 64); err != nil || n < 0 {
				return usagef("send-stop: --requested-at-ms %q: must be a non-negative integer", *reqAt)
			}
		}
	}
	if *wait && *waitTimeout <= 0 {
		return usagef("send-stop: --wait-timeout: must be positive")
	}
	values := []any{"game_id", game}
	if !*raw || set["reason"] {
		values = append(values, "reason", *reason)
	}
	if set["requested-at-ms"] {
		values = append(values, "requested_at_ms", *reqAt)
	}

	return a.sendJob(ctx, jobsKey, "stop", values, *wait, *waitTimeout)
}

// sendJob appends a job to stream and prints its id or, with wait, waits
// for its result and prints that.
func (a *app) sendJob(ctx context.Context, stream, kind string, values []any, wait bool, waitTimeout time.Duration) error {
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	after := ""
	if wait {
		// Remember where the results stream ends before the job exists, so
		// its result cannot be missed.
		if after, err = lastID(ctx, c, resultsKey); err != nil {
			return err
		}
	}
	id, err := c.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values}).Result()
	if err != nil {
		return fmt.Errorf("append %s job to %s: %w", kind, stream, err)
	}
	if !wait {
		if a.g.json {
			return writeJSON(a.stdout, sendView{JobID: id})
		}
		_, err := fmt.Fprintln(a.stdout, id)
		return err
	}
	if !a.g.json {
		fmt.Fprintf(a.stdout, "job %s sent; waiting up to %s for its result\n", id, waitTimeout)
	}
	res, werr := waitResult(ctx, c, after, id, waitTimeout)
	if a.g.json {
		if err := writeJSON(a.stdout, sendView{JobID: id, Result: res}); err != nil {
			return err
		}
	} else if res != nil {
		if err := printResults(a.stdout, []resultView{*res}, true); err != nil {
			return err
		}
	}
	return werr
}

// waitResult reads resultsKey after id `after` until the result of jobID
// arrives, the timeout passes or ctx ends.
func waitResult(ctx context.Context, c *redis.Client, after, jobID string, timeout time.Duration) (*resultView, error) {
	deadline := time.Now().Add(timeout)
	for {
		remaining := time.Until(deadline)
		if remaining < time.Millisecond {
			return nil, fmt.Errorf("no result for job %s on %s within %s", jobID, resultsKey, timeout)
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("wait for the result of job %s: %w", jobID, ctx.Err())
		}
		msgs, err := readAfter(ctx, c, resultsKey, after, min(remaining, pollBlock))
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("wait for the result of job %s: %w", jobID, ctx.Err())
			}
			return nil, fmt.Errorf("wait for the result of job %s: %w", jobID, err)
		}
		for _, m := range msgs {
			after = m.ID
			if str(m.Values, "job_id") == jobID {
				v := toResultView(m)
				return &v, nil
			}
		}
	}
}

// readAfter is one XREAD BLOCK of stream after id; no entries is not an error.
func readAfter(ctx context.Context, c *redis.Client, stream, after string, block time.Duration) ([]redis.XMessage, error) {
	res, err := c.XRead(ctx, &redis.XReadArgs{Streams: []string{stream, after}, Count: 100, Block: block}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", stream, err)
	}
	var out []redis.XMessage
	for _, s := range res {
		out = append(out, s.Messages...)
	}
	return out, nil
}

// lastID is the id of the newest entry of stream, or "0-0" when it is empty.
func lastID(ctx context.Context, c *redis.Client, stream string) (string, error) {
	msgs, err := c.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("read the last entry of %s: %w", stream, err)
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}
