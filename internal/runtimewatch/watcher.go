// Package runtimewatch tells Lobby, exactly once, when a running game's
// engine ends or changes health without a job asking: it watches the
// runtimes of the records that say running or unhealthy, and moves a
// record and appends its runtime event (runtime:events, or in a sharded
// layout the events stream of the game's shard, in the record's slot) in
// one store script that checks the record first, so two replicas that see
// the same exit write one event and a stop job racing the exit decides one
// outcome.
//
// Components, each one loop with its own file: reconcile.go (the records
// against the runtimes, at start and every ReconcileInterval), exits.go
// (waiting on each runtime's end, and the drivers' exit notices),
// probe.go (health checks), shard.go (which games this replica watches).
package runtimewatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/runtimes"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
)

// Defaults (Options).
const (
	DefaultReconcileInterval  = 30 * time.Second
	DefaultProbeInterval      = 10 * time.Second
	DefaultProbeTimeout       = 2 * time.Second
	DefaultFailureThreshold   = 3
	DefaultProbeConcurrency   = 64
	DefaultInspectConcurrency = 16
)

// Store is what the watch needs of the runtime store.
type Store interface {
	Watched(ctx context.Context, statuses ...string) ([]stopruntime.Record, error)
	Transition(ctx context.Context, eventsKey string, maxLen int64, c runtimestore.Change) (string, error)
}

// Inspector tells whether a runtime runs; every watched driver has one.
type Inspector interface {
	Inspect(ctx context.Context, containerID string) (runtimes.State, error)
}

// ExitWaiter waits for one runtime's end (the process driver: a pidfd or
// its child's reaper, so an exit is seen at once).
type ExitWaiter interface {
	WaitExit(ctx context.Context, containerID string) (runtimes.State, error)
}

// ExitNotifier reports ended runtimes as they end (the docker driver: the
// daemon's die events), with how they ended when the notice says (else
// nil: the watch inspects); an empty id means some may have been missed.
type ExitNotifier interface {
	NotifyExits(ctx context.Context, fn func(containerID string, st *runtimes.State))
}

// Metrics is told what the watch sees; nil: nothing.
type Metrics interface {
	RuntimeEvent(typ string)
	ProbeFailed()
	Reconciled(took time.Duration, byStatus map[string]int)
}

// Options configure a Watcher; zero values take the Default* constants.
type Options struct {
	// Drivers by record runtime (process, docker). Records of other
	// runtimes (none) are not watched.
	Drivers map[string]Inspector
	// ReconcileInterval: how often every watched record is checked against
	// its runtime (also once at Start).
	ReconcileInterval time.Duration
	// ProbeInterval, ProbeTimeout: a TCP connect to each watched engine's
	// endpoint; FailureThreshold failures in a row make it unhealthy, one
	// success makes it healthy again. ProbeInterval < 0 turns probing off.
	ProbeInterval    time.Duration
	ProbeTimeout     time.Duration
	FailureThreshold int
	// ProbeConcurrency and InspectConcurrency bound the probes and driver
	// inspections in flight.
	ProbeConcurrency   int
	InspectConcurrency int
	// Events is the contract's runtimeEvents channel (its address, MAXLEN
	// and field encoding). Required.
	Events *api.Channel
	// Layout is where the keys are (api.NewLayout), the store's
	// (runtimestore.Options.Layout): sharded, a game's event goes to the
	// events stream of its shard. The zero value is not sharded: every
	// event goes to Events' address.
	Layout api.Layout
	// HealthPath gives the HTTP path of an engine profile's health check
	// (engines.Profile.HealthPath); "" or nil: a TCP connect.
	HealthPath func(engine string) string
	// Shard says which games this replica watches; nil: all.
	Shard   Sharder
	Logger  *slog.Logger
	Metrics Metrics
	Now     func() time.Time
}

func (o *Options) setDefaults() {
	if o.ReconcileInterval <= 0 {
		o.ReconcileInterval = DefaultReconcileInterval
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = DefaultProbeTimeout
	}
	if o.FailureThreshold <= 0 {
		o.FailureThreshold = DefaultFailureThreshold
	}
	if o.ProbeConcurrency <= 0 {
		o.ProbeConcurrency = DefaultProbeConcurrency
	}
	if o.InspectConcurrency <= 0 {
		o.InspectConcurrency = DefaultInspectConcurrency
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = nopMetrics{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HealthPath == nil {
		o.HealthPath = func(string) string { return "" }
	}
}

// Validate reports options that cannot work.
func (o *Options) Validate() error {
	if o.Events == nil || o.Events.Address == "" {
		return errors.New("runtime watch: no runtime events channel")
	}
	if o.Layout.Sharded && o.Events.Stream.ShardedAddress == "" {
		return fmt.Errorf("runtime watch: channel %s has no sharded address for a sharded layout", o.Events.Key)
	}
	if o.ProbeInterval > 0 && o.ProbeTimeout > o.ProbeInterval {
		return fmt.Errorf("runtime watch: probe timeout %s exceeds the probe interval %s", o.ProbeTimeout, o.ProbeInterval)
	}
	return nil
}

type nopMetrics struct{}

func (nopMetrics) RuntimeEvent(string)                      {}
func (nopMetrics) ProbeFailed()                             {}
func (nopMetrics) Reconciled(time.Duration, map[string]int) {}

// Watcher runs the watch; Start it, Close it.
type Watcher struct {
	store Store
	opts  Options

	mu    sync.Mutex
	games map[string]*game // the games this replica watches, by id
	// forgotten: when each game was last forgotten (Forget), so a
	// reconciliation that listed it before does not watch it again; an
	// entry lives until the next reconciliation begins after it.
	forgotten map[string]time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // reconcile now
	http   *http.Client  // health checks with a path (probe.go)
}

// game is one watched runtime.
type game struct {
	rec      stopruntime.Record
	since    time.Time          // when the watch began
	stopWait context.CancelFunc // ends its ExitWaiter's wait; nil when none
	// waiting: its ExitWaiter's wait runs, so the reconciliation need not
	// inspect it (the wait sees the end first).
	waiting bool
	// forgotten: a stop job owns it (Forget); its end is not reported, and
	// the game is dropped once its wait returns or a reconciliation no
	// longer lists it.
	forgotten bool
	failures  int // health checks failed in a row
}

// New builds a Watcher.
func New(store Store, opts Options) (*Watcher, error) {
	if store == nil {
		return nil, errors.New("runtime watch: nil store")
	}
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	return &Watcher{store: store, opts: opts, games: map[string]*game{}, forgotten: map[string]time.Time{}, kick: make(chan struct{}, 1), http: newProbeClient(opts.ProbeTimeout)}, nil
}

// Start runs the loops until Close.
func (w *Watcher) Start() {
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.run(w.reconcileLoop)
	if w.opts.ProbeInterval > 0 {
		w.run(w.probeLoop)
	}
	for _, d := range w.opts.Drivers {
		if n, ok := d.(ExitNotifier); ok {
			w.run(func() { n.NotifyExits(w.ctx, w.noticed) })
		}
	}
}

func (w *Watcher) run(f func()) {
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		f()
	}()
}

// Close stops the loops and waits for them (or ctx).
func (w *Watcher) Close(ctx context.Context) error {
	if w.cancel == nil {
		return nil
	}
	w.cancel()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("close runtime watch: %w", ctx.Err())
	}
}

// Watch starts watching a game that became running in this process (a
// start job), without waiting for the next reconciliation. A nil Watcher
// watches nothing.
func (w *Watcher) Watch(rec stopruntime.Record) {
	if w == nil || w.ctx == nil || w.opts.Drivers[rec.Runtime] == nil || rec.Status != stopruntime.StatusRunning {
		return
	}
	if s := w.opts.Shard; s != nil && !s.Mine(rec.GameID) {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.forgotten, rec.GameID) // running again: a new runtime
	w.addLocked(rec)
}

// addLocked watches rec (again, if its container changed).
func (w *Watcher) addLocked(rec stopruntime.Record) {
	if g, ok := w.games[rec.GameID]; ok {
		if g.rec.ContainerID == rec.ContainerID {
			// Listed as running after its stop began: the stop did not end
			// it, so it is watched again (by the wait that still runs).
			g.rec.Status, g.rec.EngineEndpoint, g.forgotten = rec.Status, rec.EngineEndpoint, false
			return
		}
		w.dropLocked(rec.GameID)
	}
	g := &game{rec: rec, since: time.Now()}
	w.games[rec.GameID] = g
	if ew, ok := w.opts.Drivers[rec.Runtime].(ExitWaiter); ok {
		ctx, cancel := context.WithCancel(w.ctx)
		g.stopWait, g.waiting = cancel, true
		w.run(func() {
			defer w.waitEnded(g)
			w.waitExit(ctx, ew, rec)
		})
	}
}

// waitEnded notes that g's exit wait has returned: from now on the
// reconciliation inspects it.
func (w *Watcher) waitEnded(g *game) {
	w.mu.Lock()
	g.waiting = false
	w.mu.Unlock()
}

// Forget stops watching a game whose stop a job has begun (its record is
// stopping, owned by the job): the end of its runtime is the stop's to
// record, and a transition of the watch would find the record changed and
// write nothing. Forgetting spares that script per stopped game, which in a
// mass stop is one Redis round trip per game. If the stop does not end the
// runtime, the reconciliation watches the game again once its record says
// running (a reconciliation that listed the record before the stop began
// does not watch it again). A nil Watcher forgets nothing.
//
// The game's exit wait is left to end with the runtime rather than
// cancelled: cancelling wakes it (and its driver's timer) at once, and
// thousands of such wakes in a burst of stops queue the job workers behind
// them; the runtime's end wakes it anyway.
func (w *Watcher) Forget(gameID string) {
	if w == nil || w.ctx == nil {
		return
	}
	w.mu.Lock()
	if g := w.games[gameID]; g != nil {
		g.forgotten = true
		if !g.waiting {
			w.dropLocked(gameID)
		}
	}
	w.forgotten[gameID] = time.Now()
	w.mu.Unlock()
}

func (w *Watcher) dropLocked(id string) {
	if g, ok := w.games[id]; ok {
		if g.stopWait != nil {
			g.stopWait()
		}
		delete(w.games, id)
	}
}

// watched returns a copy of the watched records.
func (w *Watcher) watched() []stopruntime.Record {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]stopruntime.Record, 0, len(w.games))
	for _, g := range w.games {
		if !g.forgotten {
			out = append(out, g.rec)
		}
	}
	return out
}
