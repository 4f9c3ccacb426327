package runtimewatch

import (
	"context"
	"time"

	"galaxy/rtmanager/internal/runtimes"
	"galaxy/rtmanager/internal/stopruntime"
)

// waitExit waits for one watched runtime's end (its driver's ExitWaiter)
// and reports it; it returns when the game is no longer watched (ctx).
// A wait that fails (the driver could not tell) leaves the game to the
// next reconciliation.
func (w *Watcher) waitExit(ctx context.Context, ew ExitWaiter, rec stopruntime.Record) {
	st, err := ew.WaitExit(ctx, rec.ContainerID)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		w.opts.Logger.Warn("wait for runtime exit failed; the next reconciliation checks it",
			"game_id", rec.GameID, "container_id", rec.ContainerID, "err", err)
		return
	}
	if st.Running {
		return
	}
	w.report(rec.GameID, rec.ContainerID, st)
}

// noticed handles a driver's exit notice: the container's game, if this
// replica watches it, is reported (inspected first when the notice does not
// say how it ended). An empty id (notices may have been missed) asks for a
// reconciliation.
func (w *Watcher) noticed(containerID string, st *runtimes.State) {
	if containerID == "" {
		select {
		case w.kick <- struct{}{}:
		default:
		}
		return
	}
	var rec stopruntime.Record
	w.mu.Lock()
	for _, g := range w.games {
		if g.rec.ContainerID == containerID {
			rec = g.rec
			break
		}
	}
	w.mu.Unlock()
	if rec.GameID == "" {
		return
	}
	if st != nil {
		w.report(rec.GameID, rec.ContainerID, *st)
		return
	}
	w.check(rec)
}

// check inspects one runtime and reports its end.
func (w *Watcher) check(rec stopruntime.Record) {
	ins := w.opts.Drivers[rec.Runtime]
	if ins == nil {
		return
	}
	ctx, cancel := context.WithTimeout(w.ctx, 30*time.Second)
	defer cancel()
	st, err := ins.Inspect(ctx, rec.ContainerID)
	if err != nil {
		if w.ctx.Err() == nil {
			w.opts.Logger.Warn("inspect runtime failed", "game_id", rec.GameID, "container_id", rec.ContainerID, "err", err)
		}
		return
	}
	if !st.Running {
		w.report(rec.GameID, rec.ContainerID, st)
	}
}

// report writes the exit of a watched game's runtime, as the watch knows
// its record now.
func (w *Watcher) report(gameID, containerID string, st runtimes.State) {
	w.mu.Lock()
	g := w.games[gameID]
	var rec stopruntime.Record
	if g != nil && g.rec.ContainerID == containerID {
		if g.forgotten {
			w.dropLocked(gameID) // its stop records the end
		} else {
			rec = g.rec
		}
	}
	w.mu.Unlock()
	if rec.GameID == "" {
		return // no longer watched (stopped, or reported already)
	}
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	if err := w.change(ctx, rec, EventExited, st); err != nil && w.ctx.Err() == nil {
		w.opts.Logger.Warn("report runtime exit failed; the next reconciliation tries again",
			"game_id", gameID, "container_id", containerID, "err", err)
	}
}
