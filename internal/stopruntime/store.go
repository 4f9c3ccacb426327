package stopruntime

import "context"

// BeginVerdict is what the store decided when a stop began.
type BeginVerdict string

// Begin verdicts.
const (
	// BeginNotFound: no record for the game.
	BeginNotFound BeginVerdict = "not_found"
	// BeginDone: this job already completed; Record.LastResult is its answer.
	BeginDone BeginVerdict = "done"
	// BeginReplay: the record is stopped or removed; nothing to do.
	BeginReplay BeginVerdict = "replay"
	// BeginBusy: another job owns a recent stop of this game.
	BeginBusy BeginVerdict = "busy"
	// BeginStarted: the record moved to stopping, owned by this job.
	BeginStarted BeginVerdict = "started"
	// BeginResumed: the record was already stopping by this same job (a
	// retry after a crash or a transient error); it is this job's again.
	BeginResumed BeginVerdict = "resumed"
	// BeginTakenOver: a stale stop of another job was taken over.
	BeginTakenOver BeginVerdict = "taken_over"
)

// FinishVerdict is what the store decided when a stop finished.
type FinishVerdict string

// Finish verdicts.
const (
	// FinishOK: the record now holds the final status and this job's result.
	FinishOK FinishVerdict = "ok"
	// FinishDone: this job's result was already stored (a repeated finish).
	FinishDone FinishVerdict = "done"
	// FinishLost: another job took the stop over; nothing was written.
	FinishLost FinishVerdict = "lost"
	// FinishNotFound: the record disappeared meanwhile; nothing was written.
	FinishNotFound FinishVerdict = "not_found"
)

// BeginRequest asks the store to move a record to stopping for one job.
type BeginRequest struct {
	GameID string
	JobID  string
	NowMS  int64
	// TakeoverMS: a stopping owned by another job whose stopping_since_ms is
	// at least this old may be taken over.
	TakeoverMS int64
}

// BeginResponse is the verdict with the record as it is after the call.
type BeginResponse struct {
	Verdict BeginVerdict
	Record  Record
}

// FinishRequest asks the store to end the stop owned by JobID.
type FinishRequest struct {
	GameID string
	JobID  string
	NowMS  int64
	// Status is the final status: stopped or failed.
	Status string
	Result StoredResult
	// Begun is the record as BeginStop returned it. A stop this job still
	// owns cannot have been changed by anyone else since (Register refuses
	// a stopping record), so on FinishOK the store answers with Begun plus
	// its own writes instead of reading the record back. Zero: the store
	// reads it.
	Begun Record
}

// FinishResponse is the verdict with the record as it is after the call.
type FinishResponse struct {
	Verdict FinishVerdict
	Record  Record
}

// Operation is one entry of the operation log.
type Operation struct {
	GameID        string
	Operation     string // "stop"
	Source        OpSource
	SourceRef     string
	Reason        string
	Outcome       string // success | failure | error (Handle returned a Go error)
	ErrorCode     string
	ErrorMessage  string
	ContainerID   string
	RequestedAtMS int64
	StartedAtMS   int64
	FinishedAtMS  int64
}

// Store keeps runtime records and the operation log. Every method returns
// storage errors as Go errors; callers retry them. Implementations must make
// BeginStop and FinishStop atomic per game across all replicas.
type Store interface {
	BeginStop(ctx context.Context, req BeginRequest) (BeginResponse, error)
	// FinishStop ends the stop and appends op to the operation log; an
	// implementation may do both in one round trip. An entry that cannot
	// be written is no error of FinishStop: the record holds the answer.
	FinishStop(ctx context.Context, req FinishRequest, op Operation) (FinishResponse, error)
	// AppendOperation appends op to the operation log. The Service logs
	// its error and carries on: a log entry never withholds an answer.
	AppendOperation(ctx context.Context, op Operation) error
	// Register writes a record (status, container id, engine endpoint,
	// runtime, updated_at_ms), keeping last_job_id/last_result. It fails
	// with ErrBusy while the record is stopping.
	Register(ctx context.Context, rec Record) (Record, error)
	Get(ctx context.Context, gameID string) (Record, bool, error)
}
