package runtimewatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/runtimes"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
)

// Event types (the contract's RuntimeEvent.type).
const (
	EventExited    = "engine_exited"
	EventUnhealthy = "unhealthy"
	EventHealthy   = "healthy"
)

// target is the status each event type moves a record to.
var target = map[string]string{
	EventExited:    stopruntime.StatusExited,
	EventUnhealthy: stopruntime.StatusUnhealthy,
	EventHealthy:   stopruntime.StatusRunning,
}

// change moves the record from the status the watch last saw to the
// event's, with its event, in one store script. If the record changed
// meanwhile (the script says how): an exit still applies to a record that went
// from running to unhealthy (or back) with the same container; anything
// else (a stop job owns it, another replica reported it, a new runtime)
// means there is nothing to report, and the game is no longer watched
// unless it still runs.
func (w *Watcher) change(ctx context.Context, rec stopruntime.Record, typ string, st runtimes.State) error {
	for attempt := 0; ; attempt++ {
		err := w.transition(ctx, rec, typ, st)
		var stale *runtimestore.StaleError
		if err == nil || !errors.As(err, &stale) {
			return err
		}
		// The script said what the record holds now: no second read.
		w.mu.Lock()
		if stale.ContainerID != rec.ContainerID || !watchable(stale.Status) {
			if g := w.games[rec.GameID]; g != nil && g.rec.ContainerID == rec.ContainerID {
				w.dropLocked(rec.GameID)
			}
			w.mu.Unlock()
			return nil
		}
		if g := w.games[rec.GameID]; g != nil {
			g.rec.Status = stale.Status
		}
		w.mu.Unlock()
		if typ != EventExited || attempt > 0 || stale.Status == rec.Status {
			return nil // health changes are decided again at the next probe
		}
		rec.Status = stale.Status
	}
}

// eventsKey is the events stream of the game's shard: in a sharded layout,
// in the slot of the game's record.
func (w *Watcher) eventsKey(gameID string) string {
	l := w.opts.Layout
	return l.Key(w.opts.Events, l.ShardOf(gameID))
}

func watchable(status string) bool {
	return status == stopruntime.StatusRunning || status == stopruntime.StatusUnhealthy
}

func (w *Watcher) transition(ctx context.Context, rec stopruntime.Record, typ string, st runtimes.State) error {
	now := w.opts.Now().UnixMilli()
	to := target[typ]
	ev := runtimejobs.RuntimeEventSchema{
		GameId: runtimejobs.GameIDSchema(rec.GameID), ContainerId: rec.ContainerID, Type: typ,
		PrevStatus: rec.Status, Status: to, ExitCode: st.ExitCode, Reason: st.Reason, AtMs: now,
	}
	if typ == EventExited && rec.Runtime == stopruntime.RuntimeDocker {
		oom := st.OOMKilled
		ev.OomKilled = &oom
	}
	payload, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode runtime event: %w", err)
	}
	fields, err := redisstream.PayloadToFields(w.opts.Events, payload)
	if err != nil {
		return fmt.Errorf("encode runtime event: %w", err)
	}
	id, err := w.store.Transition(ctx, w.eventsKey(rec.GameID), w.opts.Events.Stream.MaxLen, runtimestore.Change{
		GameID: rec.GameID, ContainerID: rec.ContainerID, From: rec.Status, To: to, NowMS: now,
		ExitCode: st.ExitCode, OOMKilled: st.OOMKilled, Reason: st.Reason, Event: fields,
	})
	if err != nil {
		return err
	}
	w.opts.Metrics.RuntimeEvent(typ)
	attrs := []any{"game_id", rec.GameID, "container_id", rec.ContainerID, "type", typ,
		"prev_status", rec.Status, "status", to, "reason", st.Reason, "event_id", id}
	if st.ExitCode != nil {
		attrs = append(attrs, "exit_code", *st.ExitCode)
	}
	w.opts.Logger.Info("runtime event", attrs...)
	w.mu.Lock()
	if g := w.games[rec.GameID]; g != nil && g.rec.ContainerID == rec.ContainerID {
		if to == stopruntime.StatusExited {
			w.dropLocked(rec.GameID)
		} else {
			g.rec.Status = to
		}
	}
	w.mu.Unlock()
	return nil
}
