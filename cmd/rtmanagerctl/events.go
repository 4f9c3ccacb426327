package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
)

const eventsKey = runtimejobs.RuntimeEventsChannelPath

func cmdEvents(ctx context.Context, a *app, args []string) error {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	count := fs.Int64("count", 20, "how many of the latest runtime events to print")
	follow := fs.Bool("follow", false, "keep printing new runtime events until interrupted (Ctrl-C)")
	pos, err := a.parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs("events", pos, 0, "no arguments"); err != nil {
		return err
	}
	if *count < 0 || (*count == 0 && !*follow) {
		return usagef("events: --count: must be positive")
	}
	d, err := a.open(ctx)
	if err != nil {
		return err
	}
	defer d.Close()
	ch, err := d.channel(eventsKey)
	if err != nil {
		return err
	}
	a.sharded = d.layout.Sharded
	view := func(shard *int, m redis.XMessage) (eventView, error) {
		v := toEventView(ch, m)
		v.Shard = shard
		return v, nil
	}
	return tail(ctx, d, eventsKey, *count, *follow, view, a.printEventBatch)
}

// eventView is one runtime event, read through the contract (the broker's
// codec), with its entry id; Err says why an entry could not be read.
type eventView struct {
	ID string `json:"id"`
	// Shard is the shard whose stream holds the entry; only when sharded.
	Shard *int `json:"shard,omitempty"`
	runtimejobs.RuntimeEventSchema
	Err string `json:"error,omitempty"`
}

func toEventView(ch *api.Channel, m redis.XMessage) eventView {
	v := eventView{ID: m.ID}
	payload, err := redisstream.FieldsToPayload(ch, m.Values)
	if err == nil {
		err = json.Unmarshal(payload, &v.RuntimeEventSchema)
	}
	if err != nil {
		v.Err = err.Error()
	}
	return v
}

func (a *app) printEventBatch(views []eventView, header bool) error {
	if a.g.json {
		for _, v := range views {
			if err := writeJSONLine(a.stdout, v); err != nil {
				return err
			}
		}
		return nil
	}
	return printEvents(a.stdout, views, header, a.sharded)
}

// printEvents prints a table of events; sharded adds a SHARD column after
// the ID.
func printEvents(w io.Writer, views []eventView, header, sharded bool) error {
	tw := table(w)
	if header {
		fmt.Fprintln(tw, "ID\t"+shardHeader(sharded)+"GAME\tTYPE\tSTATUS\tEXIT\tCONTAINER\tAT\tREASON")
	}
	for _, v := range views {
		exit := "-"
		if v.ExitCode != nil {
			exit = strconv.FormatInt(*v.ExitCode, 10)
		}
		if v.OomKilled != nil && *v.OomKilled {
			exit += " (oom)"
		}
		reason := v.Reason
		if v.Err != "" {
			reason = "unreadable entry: " + v.Err
		}
		fmt.Fprintf(tw, "%s\t%s%s\t%s\t%s → %s\t%s\t%s\t%s\t%s\n", v.ID, shardCell(v.Shard), dash(string(v.GameId)), dash(v.Type),
			dash(v.PrevStatus), dash(v.Status), exit, dash(v.ContainerId), msTime(v.AtMs), dash(reason))
	}
	return flush(tw)
}
