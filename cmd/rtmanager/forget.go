package main

import (
	"context"
	"sync/atomic"

	"galaxy/rtmanager/internal/runtimewatch"
	"galaxy/rtmanager/internal/stopjobs"
	"galaxy/rtmanager/internal/stopruntime"
)

// forgetOnBegin is the stop service as the stop-job handler sees it, which
// tells the runtime watch to forget a game once its stop has begun and must
// wait for the runtime: the stop records the end, and the watch would
// otherwise spend a Redis script per stopped game learning that (in a mass
// stop, thousands). The watch starts after the broker, so it is set later;
// until then there is nothing to forget.
type forgetOnBegin struct {
	stopjobs.Stopper
	watch atomic.Pointer[runtimewatch.Watcher]
}

func (f *forgetOnBegin) Begin(ctx context.Context, in stopruntime.Input) (stopruntime.Begun, error) {
	st, err := f.Stopper.Begin(ctx, in)
	if err != nil {
		return st, err
	}
	if _, answered := st.Answer(); !answered {
		f.watch.Load().Forget(in.GameID)
	}
	return st, nil
}
