// Package startruntime is the start orchestrator: it takes a start job for
// a game, moves the game's runtime record through the start states and
// calls the driver of the job's engine profile.
//
// Per game (docs/persistence.md):
//
//	invalid game id, engine name or unknown profile -> failure/invalid_job
//	last_start_job_id == job            -> the stored answer, unchanged
//	running                             -> success/replay_no_op, same container and endpoint
//	stopping, or starting by another recent job -> ErrBusy (retried)
//	no record, stopped, removed, failed, own or stale starting
//	    -> starting (owned by the job)
//	       -> adopt the runtime this job's crashed attempt made, remove any
//	          other runtime labelled with the game, else Driver.Start
//	       -> engine accepts a TCP connection within StartTimeout -> running, success
//	       -> otherwise the runtime is removed   -> removed, failure/start_failed
//	       -> transient error                    -> Go error, record stays starting
//
// So a kill -9 at any point resumes on the job's redelivery, and at most
// one runtime of a game exists.
package startruntime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	"galaxy/rtmanager/internal/engines"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
)

// DefaultStartTimeout is Options.StartTimeout's default, and rtmanager's
// --start-timeout.
const DefaultStartTimeout = 30 * time.Second

// Options tune a Service.
type Options struct {
	// StartTimeout bounds the wait for the engine to accept a connection.
	// Default DefaultStartTimeout.
	StartTimeout time.Duration
	// TakeoverAfter: another job's `starting` at least this old is presumed
	// dead and taken over. Default 2m; must exceed StartTimeout.
	TakeoverAfter time.Duration
	// ProbeInterval is the wait between connection attempts. Default 50ms.
	ProbeInterval time.Duration
	Now           func() time.Time
	Logger        *slog.Logger
}

// Service is the start orchestrator; safe for concurrent use.
type Service struct {
	store     Store
	profiles  *engines.Set
	drivers   map[string]Driver
	opts      Options
	onRunning atomic.Pointer[func(stopruntime.Record)]
}

// OnRunning sets a function told about each game this service brought to
// running (the runtime watch starts watching it at once). It may be set
// while jobs run.
func (s *Service) OnRunning(fn func(stopruntime.Record)) {
	s.onRunning.Store(&fn)
}

// New builds a Service. drivers maps a profile's runtime (process, docker)
// to the driver that starts it.
func New(store Store, profiles *engines.Set, drivers map[string]Driver, opts Options) (*Service, error) {
	if store == nil {
		return nil, errors.New("new start service: nil store")
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.TakeoverAfter <= 0 {
		opts.TakeoverAfter = 2 * time.Minute
	}
	if opts.TakeoverAfter <= opts.StartTimeout {
		return nil, fmt.Errorf("new start service: takeover after %s must exceed the start timeout %s", opts.TakeoverAfter, opts.StartTimeout)
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = 50 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	for k, d := range drivers {
		if d == nil {
			return nil, fmt.Errorf("new start service: nil driver for runtime %q", k)
		}
	}
	return &Service{store: store, profiles: profiles, drivers: drivers, opts: opts}, nil
}

func (s *Service) nowMS() int64 { return s.opts.Now().UnixMilli() }

// Validate checks a start job before anything runs: the game id, the
// engine name and that the profile exists with a driver. A non-nil error
// is the invalid_job message.
func (s *Service) Validate(in Input) (engines.Profile, Driver, error) {
	if err := stopruntime.ValidateGameID(in.GameID); err != nil {
		return engines.Profile{}, nil, err
	}
	if !engines.NamePattern.MatchString(in.Engine) {
		return engines.Profile{}, nil, fmt.Errorf("engine %q: must match %s", clip(in.Engine, 64), engines.NamePattern)
	}
	p, ok := s.profiles.Get(in.Engine)
	if !ok {
		return p, nil, fmt.Errorf("engine: no engine profile named %q", in.Engine)
	}
	d, ok := s.drivers[p.Runtime]
	if !ok {
		return p, nil, fmt.Errorf("engine %q: runtime %s is not available in this rtmanager", in.Engine, p.Runtime)
	}
	if in.JobID == "" || len(in.JobID) > 256 {
		return p, nil, errors.New("job id: want 1 to 256 bytes")
	}
	if in.RequestedAtMS < 0 {
		return p, nil, errors.New("requested_at_ms: negative")
	}
	return p, d, nil
}

// Handle starts the runtime of in.GameID. A Result is the job's answer; an
// error means "no answer yet, retry": stopruntime.ErrBusy, ErrTransient or
// a store error.
func (s *Service) Handle(ctx context.Context, in Input) (stopruntime.Result, error) {
	started := s.nowMS()
	op := stopruntime.Operation{GameID: in.GameID, Operation: "start", Source: stopruntime.OpSourceLobbyStream,
		SourceRef: in.JobID, Reason: in.Engine, RequestedAtMS: in.RequestedAtMS, StartedAtMS: started}
	prof, drv, err := s.Validate(in)
	if err != nil {
		op.GameID, op.SourceRef, op.Reason = clip(in.GameID, 128), clip(in.JobID, 256), clip(in.Engine, 64)
		return s.answer(ctx, op, stopruntime.Result{Outcome: stopruntime.OutcomeFailure,
			ErrorCode: stopruntime.CodeInvalidJob, ErrorMessage: err.Error()})
	}
	verdict, rec, prev, err := s.store.BeginStart(ctx, in.GameID, in.JobID, in.Engine, started, s.opts.TakeoverAfter.Milliseconds())
	if err != nil {
		return stopruntime.Result{}, fmt.Errorf("start game %s: begin: %w", in.GameID, err)
	}
	switch verdict {
	case runtimestore.StartDone:
		return s.answer(ctx, op, storedAnswer(rec))
	case runtimestore.StartReplay:
		return s.answer(ctx, op, stopruntime.Result{Outcome: stopruntime.OutcomeSuccess,
			ErrorCode: stopruntime.CodeReplayNoOp, ErrorMessage: "runtime already running", Record: rec})
	case runtimestore.StartBusy:
		busy := fmt.Errorf("start game %s: %s (stop job %q, start job %q): %w", in.GameID, rec.Status, rec.StoppingJobID, rec.StartingJobID, stopruntime.ErrBusy)
		return stopruntime.Result{}, s.logError(ctx, op, "busy", busy)
	case runtimestore.StartTakenOver:
		s.opts.Logger.WarnContext(ctx, "start taken over from a stale job", "game_id", in.GameID, "job_id", in.JobID, "previous_job", prev)
	case runtimestore.StartStarted, runtimestore.StartResumed:
	default:
		return stopruntime.Result{}, fmt.Errorf("start game %s: begin: unknown verdict %q", in.GameID, verdict)
	}

	rt, res, err := s.run(ctx, in, prof, drv)
	if err != nil {
		err = fmt.Errorf("start game %s: %w", in.GameID, err)
		return stopruntime.Result{}, s.logError(ctx, op, "transient", err)
	}
	status := stopruntime.StatusRunning
	if res.Outcome == stopruntime.OutcomeFailure {
		status = stopruntime.StatusRemoved
	}
	op.Outcome, op.ErrorCode, op.ErrorMessage = string(res.Outcome), res.ErrorCode, res.ErrorMessage
	op.ContainerID, op.FinishedAtMS = res.ContainerID, s.nowMS()
	fv, frec, err := s.store.FinishStart(ctx, in.GameID, in.JobID, op.FinishedAtMS, status, res, drv.RuntimeName(), op)
	if err != nil {
		// The runtime stays; the record is starting by this job, and the
		// retry adopts the runtime.
		return stopruntime.Result{}, fmt.Errorf("start game %s: finish: %w", in.GameID, err)
	}
	switch fv {
	case runtimestore.StartOK:
		rec.Status, rec.ContainerID, rec.EngineEndpoint, rec.Runtime = status, res.ContainerID, res.EngineEndpoint, drv.RuntimeName()
		rec.LastStartJobID, rec.LastStartResult, rec.StartingJobID, rec.StartingSinceMS = in.JobID, res, "", 0
		if fn := s.onRunning.Load(); fn != nil && status == stopruntime.StatusRunning {
			(*fn)(rec)
		}
		return storedAnswer(rec), nil
	case runtimestore.StartDone:
		return storedAnswer(frec), nil
	default:
		// Lost: another job took the game over meanwhile. What this
		// attempt made is not the game's runtime: remove it.
		if rt.ContainerID != "" && rt.ContainerID != frec.ContainerID {
			if rerr := drv.Remove(ctx, rt.ContainerID); rerr != nil {
				return stopruntime.Result{}, fmt.Errorf("start game %s: lost the start, remove %s: %w", in.GameID, rt.ContainerID, rerr)
			}
		}
		return stopruntime.Result{}, fmt.Errorf("start game %s: start %s by another job (%s): %w", in.GameID, fv, frec.StartingJobID, stopruntime.ErrBusy)
	}
}

// run brings the game's one runtime up: adopt what this job made before a
// crash, remove every other runtime of the game, start one if none is left,
// wait until it accepts connections. A Go error is transient.
func (s *Service) run(ctx context.Context, in Input, prof engines.Profile, drv Driver) (Runtime, stopruntime.StoredResult, error) {
	found, err := drv.Find(ctx, in.GameID)
	if err != nil {
		return Runtime{}, stopruntime.StoredResult{}, transient(fmt.Errorf("find runtimes: %w", err))
	}
	var rt Runtime
	for _, f := range found {
		if f.JobID == in.JobID && rt.ContainerID == "" {
			rt = f // this job's own attempt, before a crash
			s.opts.Logger.InfoContext(ctx, "start resumed: adopted the runtime of an earlier attempt",
				"game_id", in.GameID, "job_id", in.JobID, "container_id", f.ContainerID)
			continue
		}
		s.opts.Logger.WarnContext(ctx, "removing an orphan runtime of the game", "game_id", in.GameID,
			"job_id", in.JobID, "container_id", f.ContainerID, "made_by_job", f.JobID)
		if err := drv.Remove(ctx, f.ContainerID); err != nil {
			return Runtime{}, stopruntime.StoredResult{}, transient(fmt.Errorf("remove orphan runtime %s: %w", f.ContainerID, err))
		}
	}
	if rt.ContainerID == "" {
		rt, err = drv.Start(ctx, Spec{GameID: in.GameID, JobID: in.JobID, Profile: prof})
		switch {
		case err == nil:
		case errors.Is(err, stopruntime.ErrTransient), ctx.Err() != nil:
			return Runtime{}, stopruntime.StoredResult{}, transient(err)
		default:
			// Whatever a failed start left behind is removed by the next
			// attempt's Find; this answer removes it now.
			if cerr := s.removeAll(ctx, drv, in.GameID); cerr != nil {
				return Runtime{}, stopruntime.StoredResult{}, transient(cerr)
			}
			return Runtime{}, failed(fmt.Sprintf("start %s runtime: %v", prof.Runtime, err)), nil
		}
	}
	if !rt.NoProbe {
		if err := s.waitReachable(ctx, rt.Endpoint); err != nil {
			if ctx.Err() != nil {
				return rt, stopruntime.StoredResult{}, transient(err)
			}
			if rerr := drv.Remove(ctx, rt.ContainerID); rerr != nil {
				return rt, stopruntime.StoredResult{}, transient(fmt.Errorf("remove unreachable runtime %s: %w", rt.ContainerID, rerr))
			}
			return rt, failed(err.Error()), nil
		}
	}
	return rt, stopruntime.StoredResult{Outcome: stopruntime.OutcomeSuccess, ContainerID: rt.ContainerID, EngineEndpoint: rt.Endpoint}, nil
}

func (s *Service) removeAll(ctx context.Context, drv Driver, gameID string) error {
	found, err := drv.Find(ctx, gameID)
	if err != nil {
		return fmt.Errorf("find runtimes: %w", err)
	}
	for _, f := range found {
		if err := drv.Remove(ctx, f.ContainerID); err != nil {
			return fmt.Errorf("remove runtime %s: %w", f.ContainerID, err)
		}
	}
	return nil
}

// waitReachable dials endpoint until it accepts a TCP connection or
// StartTimeout passes.
func (s *Service) waitReachable(ctx context.Context, endpoint string) error {
	ctx2, cancel := context.WithTimeout(ctx, s.opts.StartTimeout)
	defer cancel()
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx2, "tcp", endpoint)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx2.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("wait for engine at %s: %w", endpoint, ctx.Err())
			}
			return fmt.Errorf("engine did not accept connections on %s within %s", endpoint, s.opts.StartTimeout)
		case <-time.After(s.opts.ProbeInterval):
		}
	}
}

func failed(msg string) stopruntime.StoredResult {
	return stopruntime.StoredResult{Outcome: stopruntime.OutcomeFailure, ErrorCode: stopruntime.CodeStartFailed, ErrorMessage: msg}
}

func transient(err error) error {
	if errors.Is(err, stopruntime.ErrTransient) {
		return err
	}
	return fmt.Errorf("%w: %w", stopruntime.ErrTransient, err)
}

// answer logs the entry of an answered job and returns the answer. An
// entry that cannot be written does not withhold the answer: a job retried
// for its log entry alone would end, after its last delivery, as a false
// failure.
func (s *Service) answer(ctx context.Context, op stopruntime.Operation, res stopruntime.Result) (stopruntime.Result, error) {
	op.Outcome, op.ErrorCode, op.ErrorMessage = string(res.Outcome), res.ErrorCode, res.ErrorMessage
	op.ContainerID, op.FinishedAtMS = res.Record.ContainerID, s.nowMS()
	s.appendOperation(ctx, op)
	return res, nil
}

// logError logs the entry of a job that gets no answer yet and returns err.
func (s *Service) logError(ctx context.Context, op stopruntime.Operation, code string, err error) error {
	op.Outcome, op.ErrorCode, op.ErrorMessage, op.FinishedAtMS = "error", code, err.Error(), s.nowMS()
	s.appendOperation(ctx, op)
	return err
}

// appendOperation writes op's log entry; a failure is logged, never
// returned (see answer).
func (s *Service) appendOperation(ctx context.Context, op stopruntime.Operation) {
	if err := s.store.AppendOperation(ctx, op); err != nil {
		s.opts.Logger.WarnContext(ctx, "operation log entry not written", "game_id", op.GameID, "source_ref", op.SourceRef,
			"outcome", op.Outcome, "error_code", op.ErrorCode, "err", err)
	}
}

// storedAnswer is the answer kept in last_start_result: the first answer
// and every redelivery of the job are identical.
func storedAnswer(rec stopruntime.Record) stopruntime.Result {
	lr := rec.LastStartResult
	rec.ContainerID, rec.EngineEndpoint = lr.ContainerID, lr.EngineEndpoint
	return stopruntime.Result{Outcome: lr.Outcome, ErrorCode: lr.ErrorCode, ErrorMessage: lr.ErrorMessage, Record: rec}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
