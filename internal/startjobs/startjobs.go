// Package startjobs handles the start-job operation of the generated
// AppController: it checks a job (the game id, the engine profile), has the
// start orchestrator carry it out and answers it with exactly one
// RuntimeJobResult (operation start), written by the broker in the same
// atomic step as the job's acknowledgement.
//
// Error policy, as for stop jobs: an invalid job (bad game id, an engine
// name that is not a profile name, an unknown profile) is answered
// failure/invalid_job and dead-lettered, and nothing runs; a transient
// error is returned so the broker retries the job with backoff; on the last
// delivery it is answered with its error code and dead-lettered.
package startjobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/startruntime"
	"galaxy/rtmanager/internal/stopruntime"
)

// Starter is the orchestrator's surface the handler needs
// (*startruntime.Service).
type Starter interface {
	Handle(ctx context.Context, in startruntime.Input) (stopruntime.Result, error)
}

// Sender publishes a result; the generated AppController is one.
type Sender interface {
	SendAsSendJobResultOperation(ctx context.Context, msg runtimejobs.RuntimeJobResultMessage) error
}

// Delivery is what the broker tells about the entry being handled
// (*redisstream.Delivery is one).
type Delivery interface {
	ID() string
	Count() int64
	Final() bool
	Dead() string
	DeadError() string
	DeadLetter(reason, err string)
}

// Metrics is told about each answered job, labelled with the operation.
type Metrics interface {
	OperationResult(operation, outcome, errorCode string, took time.Duration)
	OperationRetry(operation, errorCode string)
}

// Operation is the result's operation and the metrics' label.
const Operation = "start"

// Options configure a Handler.
type Options struct {
	// DeliveryFrom finds the entry being handled in the context. Required.
	DeliveryFrom func(ctx context.Context) (Delivery, bool)
	// Logger gets one line per answered job. Default slog.Default().
	Logger *slog.Logger
	// Metrics: default none.
	Metrics Metrics
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Handler handles start jobs.
type Handler struct {
	starter Starter
	sender  Sender
	opts    Options
}

var _ interface {
	ReceiveStartJobOperationReceived(context.Context, runtimejobs.RuntimeStartJobMessage) error
} = (*Handler)(nil)

// New builds a Handler.
func New(starter Starter, sender Sender, opts Options) (*Handler, error) {
	if starter == nil || sender == nil || opts.DeliveryFrom == nil {
		return nil, errors.New("new start job handler: starter, sender and DeliveryFrom are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = nopMetrics{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Handler{starter: starter, sender: sender, opts: opts}, nil
}

type nopMetrics struct{}

func (nopMetrics) OperationResult(string, string, string, time.Duration) {}
func (nopMetrics) OperationRetry(string, string)                         {}

// ReceiveStartJobOperationReceived handles one start job.
func (h *Handler) ReceiveStartJobOperationReceived(ctx context.Context, msg runtimejobs.RuntimeStartJobMessage) error {
	start := h.opts.Now()
	d, ok := h.opts.DeliveryFrom(ctx)
	if !ok {
		return errors.New("start job without delivery: give the controller the broker middleware")
	}
	job := msg.Payload
	gameID := strings.TrimSpace(string(job.GameId))
	var requestedAt int64
	if job.RequestedAtMs != nil {
		requestedAt = *job.RequestedAtMs
	}
	log := h.opts.Logger.With("entry_id", d.ID(), "job_id", d.ID(), "operation", Operation, "game_id", clip(gameID),
		"engine", clip(string(job.Engine)), "requested_at_ms", requestedAt, "delivery", d.Count())

	if dead := d.Dead(); dead != "" {
		code := stopruntime.CodeInvalidJob
		if dead == "max_deliveries" {
			code = stopruntime.CodeInternal
		}
		return h.failure(ctx, log, d, start, gameID, code, d.DeadError())
	}
	in := startruntime.Input{GameID: gameID, Engine: string(job.Engine), JobID: d.ID(), RequestedAtMS: requestedAt}
	res, err := h.starter.Handle(ctx, in)
	if err != nil {
		code := stopruntime.CodeInternal
		if errors.Is(err, stopruntime.ErrTransient) || errors.Is(err, stopruntime.ErrBusy) {
			code = stopruntime.CodeRuntimeUnavailable
		}
		if !d.Final() {
			h.opts.Metrics.OperationRetry(Operation, code)
			log.Warn("start job will be retried", "error_code", code, "err", clip(err.Error()))
			return fmt.Errorf("start game %s: %w", gameID, err)
		}
		d.DeadLetter("max_deliveries", err.Error())
		return h.failure(ctx, log, d, start, gameID, code, err.Error())
	}
	if res.ErrorCode == stopruntime.CodeInvalidJob {
		// Nothing ran (the orchestrator checks before any write).
		d.DeadLetter("invalid", res.ErrorMessage)
		if !stopruntime.ValidGameID(gameID) {
			return h.deadOnly(log, start, res.ErrorCode, res.ErrorMessage)
		}
	}
	out := h.result(d, gameID)
	out.Payload.Outcome = string(res.Outcome)
	out.Payload.ErrorCode = res.ErrorCode
	out.Payload.ErrorMessage = res.ErrorMessage
	if res.Outcome == stopruntime.OutcomeSuccess {
		out.Payload.ContainerId = res.Record.ContainerID
		out.Payload.EngineEndpoint = res.Record.EngineEndpoint
	}
	return h.send(ctx, log, start, out)
}

func (h *Handler) result(d Delivery, gameID string) runtimejobs.RuntimeJobResultMessage {
	msg := runtimejobs.NewRuntimeJobResultMessage()
	msg.Payload.JobId = d.ID()
	msg.Payload.GameId = gameID
	msg.Payload.Operation = Operation
	msg.Payload.CompletedAtMs = h.opts.Now().UnixMilli()
	return msg
}

// failure answers with a failure when the game id fits a result; otherwise
// the dead letter is the only record of the job.
func (h *Handler) failure(ctx context.Context, log *slog.Logger, d Delivery, start time.Time, gameID, code, text string) error {
	if gameID == "" || len(gameID) > 128 {
		return h.deadOnly(log, start, code, text)
	}
	out := h.result(d, gameID)
	out.Payload.Outcome = string(stopruntime.OutcomeFailure)
	out.Payload.ErrorCode = code
	out.Payload.ErrorMessage = text
	return h.send(ctx, log, start, out)
}

func (h *Handler) deadOnly(log *slog.Logger, start time.Time, code, text string) error {
	log.Warn("start job dead-lettered without a result: game id unreadable", "error_code", code, "err", clip(text))
	h.opts.Metrics.OperationResult(Operation, "dead_letter_only", code, h.opts.Now().Sub(start))
	return nil
}

func (h *Handler) send(ctx context.Context, log *slog.Logger, start time.Time, out runtimejobs.RuntimeJobResultMessage) error {
	if err := h.sender.SendAsSendJobResultOperation(ctx, out); err != nil {
		log.Error("publish job result", "err", clip(err.Error()))
		return fmt.Errorf("publish result of job %s: %w", out.Payload.JobId, err)
	}
	took := h.opts.Now().Sub(start)
	h.opts.Metrics.OperationResult(Operation, out.Payload.Outcome, out.Payload.ErrorCode, took)
	log.Info("start job processed", "outcome", out.Payload.Outcome, "error_code", out.Payload.ErrorCode,
		"container_id", out.Payload.ContainerId, "engine_endpoint", out.Payload.EngineEndpoint,
		"duration_ms", float64(took.Microseconds())/1000)
	return nil
}

// clip bounds a job-supplied value in a log line.
func clip(s string) string {
	const max = 256
	if len(s) <= max {
		return s
	}
	return fmt.Sprintf("%s…(%d bytes)", s[:max], len(s))
}
