package stopruntime

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// OpSource says where a stop came from; it is written to the operation log.
type OpSource string

// Operation sources.
const (
	OpSourceLobbyStream OpSource = "lobby_stream"
	OpSourceAdmin       OpSource = "admin"
)

// Outcome is the contract's RuntimeJobResult.outcome.
type Outcome string

// Outcomes.
const (
	OutcomeSuccess Outcome = "success"
	OutcomeFailure Outcome = "failure"
)

// Error codes, matching the contract's RuntimeJobResult.error_code enum.
const (
	CodeNone               = ""
	CodeReplayNoOp         = "replay_no_op"
	CodeNotFound           = "not_found"
	CodeInvalidJob         = "invalid_job"
	CodeStopFailed         = "stop_failed"
	CodeRuntimeUnavailable = "runtime_unavailable"
	CodeInternal           = "internal"
	// CodeStartFailed answers only start jobs (contract 1.1.0).
	CodeStartFailed = "start_failed"
)

// Record statuses (the `status` field of a runtime record).
const (
	StatusStarting = "starting"
	StatusRunning  = "running"
	StatusStopping = "stopping"
	StatusStopped  = "stopped"
	StatusRemoved  = "removed"
	StatusFailed   = "failed"
	// StatusUnhealthy: running, but its engine failed its health check
	// (internal/runtimewatch); a stop job stops it, a start job finds it
	// running.
	StatusUnhealthy = "unhealthy"
	// StatusExited: the runtime ended without a stop job (it crashed, was
	// killed, or exited on its own). Terminal like stopped: a stop job
	// answers replay_no_op, a start job starts a new runtime.
	StatusExited = "exited"
)

// Runtime names (the `runtime` field of a runtime record), also the keys of
// the driver map given to New.
const (
	RuntimeDocker  = "docker"
	RuntimeProcess = "process"
	RuntimeNone    = "none"
)

var (
	// ErrBusy says another stop of the same game is in progress. The caller
	// retries later; the game's runtime was not touched by this call.
	ErrBusy = errors.New("stopruntime: another stop of this game is in progress")
	// ErrTransient marks failures that may pass on a retry (daemon
	// unreachable, timeout). Drivers wrap their transient errors with it; the
	// record stays `stopping` and a retry of the same job resumes the stop.
	ErrTransient = errors.New("stopruntime: transient runtime failure")
	// ErrGone is returned by a Driver when the runtime is already gone or
	// already stopped; the stop then counts as a success.
	ErrGone = errors.New("stopruntime: runtime already gone")
	// ErrInvalid is returned by Register for a record that cannot be stored.
	ErrInvalid = errors.New("stopruntime: invalid record")
)

// Driver stops one kind of runtime. Stop must be idempotent: a retry after a
// crash calls it again for a runtime that may already be stopped, which it
// reports as ErrGone (or nil). Errors wrapping ErrTransient are retried;
// anything else is a permanent failure (`stop_failed`).
type Driver interface {
	Stop(ctx context.Context, containerID string, grace time.Duration) error
}

// Input is one stop request.
type Input struct {
	GameID   string
	Reason   string
	OpSource OpSource
	// SourceRef identifies the job (the job stream entry id). Redeliveries
	// of one job carry the same SourceRef; that is what makes Handle
	// replay-safe. Empty means "no job identity": a unique one is generated,
	// so such a call is never deduplicated or resumed.
	SourceRef string
	// RequestedAtMS is the job's requested_at_ms; 0 means absent.
	RequestedAtMS int64
}

// StoredResult is the part of a Result kept in the record's `last_result`
// field, so that a redelivered job gets the identical answer.
type StoredResult struct {
	Outcome        Outcome `json:"outcome"`
	ErrorCode      string  `json:"error_code"`
	ErrorMessage   string  `json:"error_message"`
	ContainerID    string  `json:"container_id"`
	EngineEndpoint string  `json:"engine_endpoint"`
}

// Record is one game's runtime record as stored.
type Record struct {
	GameID         string
	Status         string
	ContainerID    string
	EngineEndpoint string
	Runtime        string
	UpdatedAtMS    int64
	// LastJobID and LastResult belong to the last stop this service carried
	// through (success or stop failure); empty until then.
	LastJobID  string
	LastResult StoredResult
	// StoppingJobID and StoppingSinceMS are set only while Status is
	// `stopping`: which job owns the stop and since when.
	StoppingJobID   string
	StoppingSinceMS int64

	// Start jobs (internal/startruntime). Engine is the profile the
	// runtime was started with. StartingJobID and StartingSinceMS are set
	// only while Status is `starting`. LastStartJobID and LastStartResult
	// belong to the last start carried through; kept apart from the stop's
	// fields because start and stop job ids come from different streams.
	Engine          string
	StartingJobID   string
	StartingSinceMS int64
	LastStartJobID  string
	LastStartResult StoredResult

	// Runtime watch (internal/runtimewatch): set when the runtime ended on
	// its own (StatusExited: ExitCode when known, OOMKilled, FinishedAtMS)
	// or failed its health check (StatusUnhealthy: UnhealthySinceMS);
	// FailureReason says why. Cleared by the next start or register.
	ExitCode         *int64
	OOMKilled        bool
	FinishedAtMS     int64
	FailureReason    string
	UnhealthySinceMS int64
}

// Result is the answer of Handle.
type Result struct {
	Outcome      Outcome
	ErrorCode    string
	ErrorMessage string
	// Record is the game's record after the operation (for a not_found
	// answer only GameID is set). Its ContainerID and EngineEndpoint are the
	// ones to report on the wire.
	Record Record
}

// GameIDPattern is the contract's GameID pattern; ValidGameID checks it.
const GameIDPattern = `^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`

// ValidateGameID checks id against GameIDPattern. Braces, newlines and other
// bytes that could reach another key or break the hash tag are refused, so
// every key is built from a checked id only.
func ValidateGameID(id string) error {
	if !ValidGameID(id) {
		return fmt.Errorf("game id %q: must match %s", truncate(id, 64), GameIDPattern)
	}
	return nil
}

// ValidGameID reports whether id matches GameIDPattern. It is the pattern
// written out as a loop: a stop checks the id several times (the handler,
// the orchestrator, each key), and the regexp cost a few per cent of the CPU
// of a stop. TestValidGameIDIsThePattern holds the two together.
func ValidGameID(id string) bool {
	if len(id) == 0 || len(id) > 128 || !alnum(id[0]) {
		return false
	}
	for i := 1; i < len(id); i++ {
		if c := id[i]; !alnum(c) && c != '.' && c != '_' && c != ':' && c != '-' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// KnownReason reports whether r is one of the contract's stop reasons.
func KnownReason(r string) bool {
	switch r {
	case "game_finished", "lobby_cancelled", "admin_request", "idle_timeout", "platform_shutdown":
		return true
	}
	return false
}

func knownStatus(s string) bool {
	switch s {
	case StatusStarting, StatusRunning, StatusStopping, StatusStopped, StatusRemoved, StatusFailed:
		return true
	}
	return false
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
