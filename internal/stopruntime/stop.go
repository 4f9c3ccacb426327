package stopruntime

import (
	"context"
	"fmt"
)

// A stop runs in two steps, so that a caller need not hold a worker while a
// runtime takes its grace period to exit:
//
//   - Begin validates the request and moves the record to stopping
//     (Store.BeginStop). What needs no runtime is answered here, at once:
//     invalid_job, not_found, replay_no_op, the stored answer of a job
//     already answered; and ErrBusy when another job stops the game.
//   - Finish calls the driver (which may wait up to the grace period) and
//     records the outcome (Store.FinishStop).
//
// Between the two the record is stopping, owned by the job, exactly as
// during Handle: a crash there leaves it for a retry of the same job to
// resume. Handle is both steps in one call.

// Begun is a stop whose begin step has run: either answered already, or
// waiting for Finish. *Stop is the orchestrator's; it is an interface so
// callers can be tested with their own.
type Begun interface {
	Answer() (res Result, ok bool)
	Finish(ctx context.Context) (Result, error)
}

// Stop is a stop whose begin step has run and whose runtime is still to be
// stopped (Finish). A stop Begin answered at once is an answeredStop instead:
// the Result it carries would more than double every waiting stop's size,
// and Begin allocates one per job.
type Stop struct {
	s   *Service
	in  Input
	op  Operation
	rec Record // as BeginStop left it: stopping, owned by the job
}

// Answer is never ok for a Stop: Finish must be called.
func (st *Stop) Answer() (res Result, ok bool) { return Result{}, false }

// answeredStop is a stop Begin answered: nothing to wait for.
type answeredStop struct{ res Result }

func (a *answeredStop) Answer() (Result, bool)                 { return a.res, true }
func (a *answeredStop) Finish(context.Context) (Result, error) { return a.res, nil }

// Handle stops the runtime of in.GameID: Begin, then Finish when needed. A
// Result is the answer for the job; a non-nil error means "no answer yet,
// retry later": ErrBusy (another stop of the game runs), ErrTransient (the
// driver could not reach its runtime), or a store error. Invalid input is
// answered with failure/invalid_job.
func (s *Service) Handle(ctx context.Context, in Input) (Result, error) {
	st, err := s.Begin(ctx, in)
	if err != nil {
		return Result{}, err
	}
	if res, ok := st.Answer(); ok {
		return res, nil
	}
	return st.Finish(ctx)
}

// Begin runs the first step of a stop: see Handle for its errors. When the
// returned Stop has no Answer, the record is stopping, owned by
// in.SourceRef, and the caller calls Finish (or, if it cannot, leaves the
// job to be retried: the retry resumes the stop).
func (s *Service) Begin(ctx context.Context, in Input) (Begun, error) {
	started := s.nowMS()
	op := Operation{
		GameID: in.GameID, Operation: "stop", Source: in.OpSource, SourceRef: in.SourceRef,
		Reason: in.Reason, RequestedAtMS: in.RequestedAtMS, StartedAtMS: started,
	}
	answered := func(res Result) (Begun, error) {
		res, err := s.answer(ctx, op, res)
		if err != nil {
			return nil, err
		}
		return &answeredStop{res: res}, nil
	}
	if err := validateInput(in); err != nil {
		op.GameID = truncate(in.GameID, 128)
		op.SourceRef = truncate(in.SourceRef, 256)
		return answered(Result{Outcome: OutcomeFailure, ErrorCode: CodeInvalidJob, ErrorMessage: err.Error()})
	}
	if in.SourceRef == "" {
		in.SourceRef = generatedRef(in.OpSource)
		op.SourceRef = in.SourceRef
	}

	begin, err := s.store.BeginStop(ctx, BeginRequest{
		GameID: in.GameID, JobID: in.SourceRef, NowMS: started,
		TakeoverMS: s.opts.TakeoverAfter.Milliseconds(),
	})
	if err != nil {
		return nil, fmt.Errorf("stop game %s: begin: %w", in.GameID, err)
	}
	rec := begin.Record
	switch begin.Verdict {
	case BeginNotFound:
		return answered(Result{Outcome: OutcomeFailure, ErrorCode: CodeNotFound,
			ErrorMessage: "no runtime record for game " + in.GameID, Record: Record{GameID: in.GameID}})
	case BeginDone:
		return answered(storedAnswer(rec))
	case BeginReplay:
		res := Result{Outcome: OutcomeSuccess, ErrorCode: CodeReplayNoOp,
			ErrorMessage: "runtime already " + rec.Status, Record: rec}
		if rec.Status == StatusRemoved {
			res.Record.ContainerID = ""
		}
		return answered(res)
	case BeginBusy:
		op.Outcome, op.ErrorCode, op.FinishedAtMS = "error", "busy", s.nowMS()
		busy := fmt.Errorf("stop game %s: stopping by job %s since %d: %w",
			in.GameID, rec.StoppingJobID, rec.StoppingSinceMS, ErrBusy)
		s.appendOperation(ctx, op)
		return nil, busy
	case BeginTakenOver:
		s.log.WarnContext(ctx, "stop taken over from a stale job", "game_id", in.GameID,
			"source_ref", in.SourceRef, "previous_job", rec.StoppingJobID)
	case BeginStarted, BeginResumed:
	default:
		return nil, fmt.Errorf("stop game %s: begin: unknown verdict %q", in.GameID, begin.Verdict)
	}
	return &Stop{s: s, in: in, op: op, rec: rec}, nil
}

// Finish stops the runtime and records the outcome; it may take the stop
// grace period (plus the margin) and honours ctx. Its errors are Handle's.
// Finish of a stop Begin answered returns that answer.
func (st *Stop) Finish(ctx context.Context) (Result, error) {
	s, in, op, rec := st.s, st.in, st.op, st.rec
	status, stored, err := s.stopRuntime(ctx, rec)
	if err != nil {
		// Transient: the record stays stopping, owned by this job, so a retry
		// of the same job resumes it.
		op.Outcome, op.ErrorCode, op.ErrorMessage, op.FinishedAtMS = "error", "transient", err.Error(), s.nowMS()
		op.ContainerID = rec.ContainerID
		err = fmt.Errorf("stop game %s: %w", in.GameID, err)
		s.log.WarnContext(ctx, "transient stop failure", "game_id", in.GameID, "source_ref", in.SourceRef, "err", err)
		s.appendOperation(ctx, op)
		return Result{}, err
	}
	op.Outcome, op.ErrorCode, op.ErrorMessage = string(stored.Outcome), stored.ErrorCode, stored.ErrorMessage
	op.ContainerID, op.FinishedAtMS = stored.ContainerID, s.nowMS()
	fin, err := s.store.FinishStop(ctx, FinishRequest{
		GameID: in.GameID, JobID: in.SourceRef, NowMS: op.FinishedAtMS, Status: status, Result: stored, Begun: rec,
	}, op)
	if err != nil {
		return Result{}, fmt.Errorf("stop game %s: finish: %w", in.GameID, err)
	}
	switch fin.Verdict {
	case FinishOK, FinishDone:
		res := storedAnswer(fin.Record)
		if res.Outcome == OutcomeFailure {
			s.log.WarnContext(ctx, "stop failed", "game_id", in.GameID, "source_ref", in.SourceRef,
				"error_code", res.ErrorCode, "error_message", res.ErrorMessage)
		}
		return res, nil
	case FinishLost:
		return Result{}, fmt.Errorf("stop game %s: stop was taken over by job %s: %w",
			in.GameID, fin.Record.StoppingJobID, ErrBusy)
	case FinishNotFound:
		// Someone deleted the record while we stopped it; the next attempt
		// answers not_found.
		return Result{}, fmt.Errorf("stop game %s: record vanished during the stop: %w", in.GameID, ErrBusy)
	default:
		return Result{}, fmt.Errorf("stop game %s: finish: unknown verdict %q", in.GameID, fin.Verdict)
	}
}
