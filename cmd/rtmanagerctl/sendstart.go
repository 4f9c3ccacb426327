package main

import (
	"context"
	"time"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/engines"
)

const startJobsKey = runtimejobs.StartJobsChannelPath

// cmdSendStart appends a start job as Lobby does. The engine is a profile
// name of rtmanager's --engines file; whether it exists only rtmanager
// knows (an unknown one is answered invalid_job).
func cmdSendStart(ctx context.Context, a *app, args []string) error {
	j := newJobFlags("send-start", "engine", 60*time.Second)
	engine := j.fs.String("engine", "", "the engine profile to start (a name of rtmanager's --engines file)")
	game, err := j.parse(a, args, func() error {
		if !engines.NamePattern.MatchString(*engine) {
			return usagef("send-start: --engine %q: must match %s", *engine, engines.NamePattern)
		}
		return nil
	})
	if err != nil {
		return err
	}
	var typed any
	if !*j.raw {
		typed = runtimejobs.RuntimeStartJobSchema{GameId: runtimejobs.GameIDSchema(game), Engine: runtimejobs.EngineNameSchema(*engine), RequestedAtMs: j.requestedAt()}
	}
	return a.sendJob(ctx, true, j, game, typed, j.values(game, *engine))
}
