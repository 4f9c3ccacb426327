// Package stopruntime is the stop orchestrator: it takes a stop request for a
// game, moves the game's runtime record through the stop state machine and
// calls the runtime driver that really stops the game.
//
// The state machine, per game (see docs/persistence.md for the fields):
//
//	no record                          -> failure/not_found
//	last_job_id == SourceRef           -> the stored last_result, unchanged
//	stopped | removed                  -> success/replay_no_op
//	stopping by another, recent job    -> ErrBusy (caller retries later)
//	anything else (running, starting, failed, own or stale stopping)
//	    -> stopping (owned by SourceRef) -> Driver.Stop
//	       -> nil or ErrGone           -> stopped, success
//	       -> error wrapping ErrTransient -> Go error, record stays stopping
//	       -> other error              -> failed, failure/stop_failed
//
// Service.Begin runs the first transition and answers what needs no
// runtime; Stop.Finish calls the driver and runs the second (stop.go);
// Service.Handle is both. Both transitions are atomic in the Store, so one
// game is stopped by at most one job at a time across all replicas. A
// failed record is stopped again by the next job.
//
// Ports: Store (records and the operation log; the Redis one is
// internal/runtimestore) and Driver (one per runtime kind; internal/runtimes/...).
// The Service picks the driver by the record's `runtime` field.
//
// Operators and demos record and read runtimes through Service.Register and
// Service.Get, which validate the game id like Handle does.
package stopruntime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Options tune a Service. Zero values take the documented defaults.
type Options struct {
	// StopGrace is the grace period given to Driver.Stop before a runtime is
	// killed. Default DefaultStopGrace.
	StopGrace time.Duration
	// StopMargin is added to StopGrace to bound one Driver.Stop call, so a
	// hung daemon cannot hold a stop forever. Default DefaultStopMargin.
	StopMargin time.Duration
	// TakeoverAfter is how old another job's `stopping` must be before this
	// job may take the stop over (that job is presumed dead). Must exceed
	// StopGrace+StopMargin. Default DefaultTakeoverAfter; TakeoverFor gives
	// one for a StopGrace.
	TakeoverAfter time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives per-stop events. Default slog.Default().
	Logger *slog.Logger
}

// Service is the stop orchestrator. It is safe for concurrent use.
type Service struct {
	store   Store
	drivers map[string]Driver
	opts    Options
	log     *slog.Logger
}

// New builds a Service. drivers maps a record's `runtime` value (RuntimeDocker,
// RuntimeProcess, RuntimeNone) to its driver; a record whose runtime has no
// driver ends failed with error code `internal`.
func New(store Store, drivers map[string]Driver, opts Options) (*Service, error) {
	if store == nil {
		return nil, errors.New("new stop service: nil store")
	}
	if opts.StopGrace <= 0 {
		opts.StopGrace = DefaultStopGrace
	}
	if opts.StopMargin <= 0 {
		opts.StopMargin = DefaultStopMargin
	}
	if opts.TakeoverAfter <= 0 {
		opts.TakeoverAfter = DefaultTakeoverAfter
	}
	if opts.TakeoverAfter <= opts.StopGrace+opts.StopMargin {
		return nil, fmt.Errorf("new stop service: takeover after %s must exceed stop grace + margin %s",
			opts.TakeoverAfter, opts.StopGrace+opts.StopMargin)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := make(map[string]Driver, len(drivers))
	for name, drv := range drivers {
		if drv == nil {
			return nil, fmt.Errorf("new stop service: nil driver for runtime %q", name)
		}
		d[name] = drv
	}
	return &Service{store: store, drivers: d, opts: opts, log: opts.Logger}, nil
}

// stopRuntime calls the driver and maps its answer to the final status and
// result; a non-nil error is transient.
func (s *Service) stopRuntime(ctx context.Context, rec Record) (string, StoredResult, error) {
	res := StoredResult{ContainerID: rec.ContainerID, EngineEndpoint: rec.EngineEndpoint}
	drv, ok := s.drivers[rec.Runtime]
	if !ok {
		res.Outcome, res.ErrorCode = OutcomeFailure, CodeInternal
		res.ErrorMessage = fmt.Sprintf("no driver for runtime %q", rec.Runtime)
		return StatusFailed, res, nil
	}
	if sd, ok := drv.(SlotDriver); ok {
		// The deadline below starts once the slot is ours.
		sctx, release, err := sd.AcquireSlot(ctx)
		if err != nil {
			return "", res, fmt.Errorf("%s driver: %w", rec.Runtime, err)
		}
		defer release()
		ctx = sctx
	}
	dctx, cancel := context.WithTimeout(ctx, s.opts.StopGrace+s.opts.StopMargin)
	err := drv.Stop(dctx, rec.ContainerID, s.opts.StopGrace)
	cancel()
	switch {
	case err == nil || errors.Is(err, ErrGone):
		res.Outcome = OutcomeSuccess
		return StatusStopped, res, nil
	case errors.Is(err, ErrTransient):
		return "", res, fmt.Errorf("%s driver: %w", rec.Runtime, err)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		// Our deadline or the caller's shutdown: the runtime may still be
		// stopping, so this is for a retry to settle.
		return "", res, fmt.Errorf("%s driver: %w: %w", rec.Runtime, ErrTransient, err)
	default:
		res.Outcome, res.ErrorCode, res.ErrorMessage = OutcomeFailure, CodeStopFailed, err.Error()
		return StatusFailed, res, nil
	}
}

// Register records a runtime (status defaults to running; runtime one of
// docker, process, none). For the process runtime the container id is the
// driver's id string (process.IDForPID). It fails with ErrBusy while a stop
// of the game is in progress, and with ErrInvalid for a bad record.
func (s *Service) Register(ctx context.Context, rec Record) (Record, error) {
	if err := ValidateGameID(rec.GameID); err != nil {
		return Record{}, fmt.Errorf("register runtime: %w: %w", ErrInvalid, err)
	}
	if rec.Status == "" {
		rec.Status = StatusRunning
	}
	if !knownStatus(rec.Status) || rec.Status == StatusStopping {
		return Record{}, fmt.Errorf("register runtime: %w: status %q", ErrInvalid, rec.Status)
	}
	switch rec.Runtime {
	case RuntimeDocker, RuntimeProcess:
		if rec.ContainerID == "" {
			return Record{}, fmt.Errorf("register runtime: %w: %s runtime needs a container id", ErrInvalid, rec.Runtime)
		}
	case RuntimeNone:
	default:
		return Record{}, fmt.Errorf("register runtime: %w: runtime %q", ErrInvalid, rec.Runtime)
	}
	rec.UpdatedAtMS = s.nowMS()
	out, err := s.store.Register(ctx, rec)
	if err != nil {
		return Record{}, fmt.Errorf("register runtime of game %s: %w", rec.GameID, err)
	}
	return out, nil
}

// Get reads the record of a game; found is false when there is none.
func (s *Service) Get(ctx context.Context, gameID string) (Record, bool, error) {
	if err := ValidateGameID(gameID); err != nil {
		return Record{}, false, fmt.Errorf("get runtime: %w", err)
	}
	rec, ok, err := s.store.Get(ctx, gameID)
	if err != nil {
		return Record{}, false, fmt.Errorf("get runtime of game %s: %w", gameID, err)
	}
	return rec, ok, nil
}

func (s *Service) nowMS() int64 { return s.opts.Now().UnixMilli() }

// answer logs the entry of an answered call and returns the answer. An
// entry that cannot be written does not withhold the answer: the answer is
// the record's, and a job retried for its log entry alone would end, after
// its last delivery, as a false failure.
func (s *Service) answer(ctx context.Context, op Operation, res Result) (Result, error) {
	op.Outcome, op.ErrorCode, op.ErrorMessage = string(res.Outcome), res.ErrorCode, res.ErrorMessage
	op.ContainerID, op.FinishedAtMS = res.Record.ContainerID, s.nowMS()
	s.appendOperation(ctx, op)
	return res, nil
}

// appendOperation writes op's log entry; a failure is logged, never
// returned (see answer).
func (s *Service) appendOperation(ctx context.Context, op Operation) {
	if err := s.store.AppendOperation(ctx, op); err != nil {
		s.log.WarnContext(ctx, "operation log entry not written", "game_id", op.GameID, "source_ref", op.SourceRef,
			"outcome", op.Outcome, "error_code", op.ErrorCode, "err", err)
	}
}

// storedAnswer rebuilds the answer from the record's last_result, so the
// first answer and every replay of the same job are identical.
func storedAnswer(rec Record) Result {
	lr := rec.LastResult
	rec.ContainerID, rec.EngineEndpoint = lr.ContainerID, lr.EngineEndpoint
	return Result{Outcome: lr.Outcome, ErrorCode: lr.ErrorCode, ErrorMessage: lr.ErrorMessage, Record: rec}
}

func validateInput(in Input) error {
	if err := ValidateGameID(in.GameID); err != nil {
		return err
	}
	if !KnownReason(in.Reason) {
		return fmt.Errorf("reason %q: must be one of game_finished, lobby_cancelled, admin_request, idle_timeout, platform_shutdown", truncate(in.Reason, 64))
	}
	if in.OpSource != OpSourceLobbyStream && in.OpSource != OpSourceAdmin {
		return fmt.Errorf("op source %q: must be lobby_stream or admin", truncate(string(in.OpSource), 64))
	}
	if len(in.SourceRef) > 256 {
		return errors.New("source ref: longer than 256 bytes")
	}
	if in.RequestedAtMS < 0 {
		return errors.New("requested_at_ms: negative")
	}
	return nil
}

func generatedRef(src OpSource) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return string(src) + "-" + hex.EncodeToString(b[:])
}
