package main

import (
	"context"
	"flag"

	"github.com/redis/go-redis/v9"
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
	d, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	a.sharded = d.layout.Sharded
	return tail(ctx, d, resultsKey, *count, *follow, func(shard *int, m redis.XMessage) (resultView, error) {
		v := toResultView(m)
		v.Shard = shard
		return v, nil
	}, a.printResultBatch)
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
	return printResults(a.stdout, views, header, a.sharded)
}
