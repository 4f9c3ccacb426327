package main

import (
	"context"
	"flag"
	"fmt"
)

func cmdResults(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("results", flag.ContinueOnError)
	count := fs.Int64("count", 20, "how many of the latest results to print")
	follow := fs.Bool("follow", false, "keep printing new results until interrupted (Ctrl-C)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("results", pos, 0, "no arguments"); err != nil {
		return err
	}
	if *count < 0 || (*count == 0 && !*follow) {
		return usagef("results: --count: must be positive")
	}
	c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	after := "0-0"
	var views []resultView
	if *count > 0 {
		msgs, err := c.XRevRangeN(ctx, resultsKey, "+", "-", *count).Result()
		if err != nil {
			return fmt.Errorf("read %s: %w", resultsKey, err)
		}
		for i := len(msgs) - 1; i >= 0; i-- {
			views = append(views, toResultView(msgs[i]))
		}
	}
	if len(views) > 0 {
		after = views[len(views)-1].ID
	} else if *follow {
		if after, err = lastID(ctx, c, resultsKey); err != nil {
			return err
		}
	}
	if err := a.printResultBatch(views, true); err != nil {
		return err
	}
	if !*follow {
		return nil
	}
	for {
		msgs, err := readAfter(ctx, c, resultsKey, after, pollBlock)
		if ctx.Err() != nil {
			return nil // interrupted: the normal end of --follow
		}
		if err != nil {
			return err
		}
		views = views[:0]
		for _, m := range msgs {
			views = append(views, toResultView(m))
			after = m.ID
		}
		if err := a.printResultBatch(views, false); err != nil {
			return err
		}
	}
}

func (a *app) printResultBatch(views []resultView, header bool) error {
	if a.g.json {
		for _, v := range views {
			if err := writeJSONLine(a.stdout, v); err != nil {
				return err
			}
		}
		return nil
	}
	if len(views) == 0 && !header {
		return nil
	}
	return printResults(a.stdout, views, header)
}
