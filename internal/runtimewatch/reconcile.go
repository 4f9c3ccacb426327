package runtimewatch

import (
	"context"
	"sync"
	"time"

	"galaxy/rtmanager/internal/stopruntime"
)

// reconcileLoop checks the records against the runtimes at start, every
// ReconcileInterval, and when a driver says it may have missed exits. So
// an engine that died while rtmanager was down is reported at the next
// start, and a missed notice costs at most one interval.
func (w *Watcher) reconcileLoop() {
	w.reconcile()
	t := time.NewTicker(w.opts.ReconcileInterval)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
		w.reconcile()
	}
}

// reconcile lists the records that say running or unhealthy, watches
// those of this replica's share (and stops watching the rest), and
// inspects each runtime, reporting the ended ones.
func (w *Watcher) reconcile() {
	began := time.Now()
	ctx, cancel := context.WithTimeout(w.ctx, max(w.opts.ReconcileInterval, 30*time.Second))
	defer cancel()
	recs, err := w.store.Watched(ctx, stopruntime.StatusRunning, stopruntime.StatusUnhealthy)
	if err != nil {
		if w.ctx.Err() == nil {
			w.opts.Logger.Warn("reconcile runtimes: list records failed", "err", err)
		}
		return
	}
	if s := w.opts.Shard; s != nil {
		if err := s.Refresh(ctx); err != nil {
			w.opts.Logger.Warn("reconcile runtimes: read the replicas failed; keeping the last share", "err", err)
		}
	}
	byStatus := map[string]int{}
	mine := make([]stopruntime.Record, 0, len(recs))
	for _, rec := range recs {
		byStatus[rec.Status]++
		if w.opts.Drivers[rec.Runtime] == nil {
			continue
		}
		if s := w.opts.Shard; s != nil && !s.Mine(rec.GameID) {
			continue
		}
		mine = append(mine, rec)
	}
	w.mu.Lock()
	keep := make(map[string]bool, len(mine))
	// A game whose exit wait runs needs no inspection: the wait sees its
	// end first (and a new wait checks the runtime as it begins).
	inspect := make([]stopruntime.Record, 0, len(mine))
	for id, at := range w.forgotten {
		if at.Before(began) {
			delete(w.forgotten, id) // the list below is newer
		}
	}
	for _, rec := range mine {
		keep[rec.GameID] = true
		if _, ok := w.forgotten[rec.GameID]; ok {
			// Its stop began after the list was read: kept as it is, not
			// watched again.
			continue
		}
		w.addLocked(rec)
		if g := w.games[rec.GameID]; g == nil || !g.waiting {
			inspect = append(inspect, rec)
		}
	}
	for id, g := range w.games {
		// A game that began while the list was read (a start job) is not
		// in it yet.
		if !keep[id] && g.since.Before(began) {
			w.dropLocked(id)
		}
	}
	w.mu.Unlock()

	w.each(inspect, w.opts.InspectConcurrency, w.check)
	w.opts.Metrics.Reconciled(time.Since(began), byStatus)
}

// each runs fn for every record, at most n at a time, and returns when all
// are done (or the watch is closing: the rest are skipped).
func (w *Watcher) each(recs []stopruntime.Record, n int, fn func(stopruntime.Record)) {
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for _, rec := range recs {
		select {
		case sem <- struct{}{}:
		case <-w.ctx.Done():
		}
		if w.ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(rec)
		}()
	}
	wg.Wait()
}
