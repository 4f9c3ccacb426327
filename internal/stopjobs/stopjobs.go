// Package stopjobs is the generated AppSubscriber for stop jobs: it checks
// a job, has the stop orchestrator carry it out, and answers it with exactly
// one RuntimeJobResult through the generated sender, which the broker writes
// in the same atomic step as the job's acknowledgement.
//
// The handler runs the orchestrator's begin step in its worker; a stop that
// must wait for its runtime to exit goes on in a broker continuation
// (Delivery.Continue), so the worker takes the next job at once while the
// job stays held, in order, until answered.
//
// Error policy (the same in the worker and in the continuation):
//   - invalid job (fails the contract's checks): a failure/invalid_job
//     result when the game id is readable, and a dead letter;
//   - transient error (orchestrator busy, runtime unreachable, Redis error):
//     the handler returns the error, so the job is retried with backoff;
//   - on the last delivery, the same error is answered with a failure result
//     carrying its error code, and the job is dead-lettered.
package stopjobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/stopruntime"
)

// Stopper is the orchestrator's surface the handler needs
// (*stopruntime.Service is one): the begin step, whose Stop either has its
// answer or is finished (Stop.Finish) once the runtime has exited.
type Stopper interface {
	Begin(ctx context.Context, in stopruntime.Input) (stopruntime.Begun, error)
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
	// Final is true on the last delivery: an error now dead-letters the job.
	Final() bool
	// Dead is the reason the broker dead-letters the entry anyway
	// ("undecodable", "max_deliveries"), or "".
	Dead() string
	DeadError() string
	// DeadLetter dead-letters the entry when it is acknowledged.
	DeadLetter(reason, err string)
	// Continue hands the rest of the job to fn, run outside the worker
	// after the handler returns nil; fn's nil acknowledges the job, its
	// error retries it (redisstream.Delivery.Continue).
	Continue(fn func(ctx context.Context) error)
}

// Metrics is told about each answered job. Default: none.
type Metrics interface {
	Result(outcome, errorCode string, took time.Duration)
	Retry(errorCode string)
}

// Dead-letter reasons the handler gives (the contract's dead_reason enum).
const (
	deadInvalid       = "invalid"
	deadMaxDeliveries = "max_deliveries"
)

// Options configure a Handler.
type Options struct {
	// DeliveryFrom finds the entry being handled in the context. Required:
	// internal/service passes the broker's accessor.
	DeliveryFrom func(ctx context.Context) (Delivery, bool)
	// Contract supplies the game id pattern and limits. Default: the
	// embedded contract.
	Contract *api.Document
	// Logger gets one line per answered job. Default slog.Default().
	Logger *slog.Logger
	// Metrics is told about results and retries. Default: none.
	Metrics Metrics
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Handler handles the stop-job operation of the generated AppController.
type Handler struct {
	stopper  Stopper
	sender   Sender
	opts     Options
	log      *slog.Logger
	validate *validator.Validate
	// gameID checks the contract's game_id pattern; gameIDPattern names it
	// in errors.
	gameID        func(string) bool
	gameIDPattern string
	maxGame       int
	minReqAt      int64
}

// Stop jobs only: start jobs have their own handler (internal/startjobs).
var _ interface {
	ReceiveStopJobOperationReceived(context.Context, runtimejobs.RuntimeStopJobMessage) error
} = (*Handler)(nil)

// New builds a Handler. The contract's checks are compiled here, once.
func New(stopper Stopper, sender Sender, opts Options) (*Handler, error) {
	if stopper == nil || sender == nil || opts.DeliveryFrom == nil {
		return nil, errors.New("new stop job handler: stopper, sender and DeliveryFrom are required")
	}
	if opts.Contract == nil {
		doc, err := api.Load()
		if err != nil {
			return nil, fmt.Errorf("new stop job handler: %w", err)
		}
		opts.Contract = doc
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
	ch, ok := opts.Contract.ChannelByAddress(runtimejobs.StopJobsChannelPath)
	if !ok || ch.Message == nil || ch.Message.Payload == nil {
		return nil, errors.New("new stop job handler: contract has no stop job message")
	}
	v := validator.New()
	// Name fields in errors as the wire does (game_id), from the generated
	// json tags, not the Go names.
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		return name
	})
	h := &Handler{stopper: stopper, sender: sender, opts: opts, log: opts.Logger, validate: v, maxGame: 128}
	if g := ch.Message.Payload.Properties["game_id"]; g != nil {
		switch {
		case g.Pattern == stopruntime.GameIDPattern:
			// The pattern the orchestrator enforces: its loop is the same
			// check without a regexp per job.
			h.gameID, h.gameIDPattern = stopruntime.ValidGameID, g.Pattern
		case g.Pattern != "":
			re, err := regexp.Compile(g.Pattern)
			if err != nil {
				return nil, fmt.Errorf("new stop job handler: game_id pattern: %w", err)
			}
			h.gameID, h.gameIDPattern = re.MatchString, g.Pattern
		}
		if g.MaxLength != nil {
			h.maxGame = *g.MaxLength
		}
	}
	if r := ch.Message.Payload.Properties["requested_at_ms"]; r != nil && r.Minimum != nil {
		h.minReqAt = int64(*r.Minimum)
	}
	return h, nil
}

type nopMetrics struct{}

func (nopMetrics) Result(string, string, time.Duration) {}
func (nopMetrics) Retry(string)                         {}

// ReceiveStopJobOperationReceived handles one stop job.
func (h *Handler) ReceiveStopJobOperationReceived(ctx context.Context, msg runtimejobs.RuntimeStopJobMessage) error {
	start := h.opts.Now()
	d, ok := h.opts.DeliveryFrom(ctx)
	if !ok {
		// A wiring fault, not a job fault: the controller lacks the broker's
		// middleware. Retrying will not help, but failing loudly will.
		return errors.New("stop job without delivery: give the controller the broker middleware")
	}
	job := msg.Payload
	job.GameId = runtimejobs.GameIDSchema(strings.TrimSpace(string(job.GameId)))
	gameID := string(job.GameId)
	var requestedAt int64
	if job.RequestedAtMs != nil {
		requestedAt = *job.RequestedAtMs
	}
	log := &jobLog{h: h, d: d, gameID: gameID, reason: job.Reason, requestedAt: requestedAt}

	if dead := d.Dead(); dead != "" {
		// The broker dead-letters this entry whatever happens; answer it.
		code := stopruntime.CodeInvalidJob
		if dead == deadMaxDeliveries {
			code = stopruntime.CodeInternal
		}
		return h.answerFailure(ctx, log, d, start, gameID, code, d.DeadError())
	}
	if err := h.check(job); err != nil {
		d.DeadLetter(deadInvalid, err.Error())
		return h.answerFailure(ctx, log, d, start, gameID, stopruntime.CodeInvalidJob, err.Error())
	}

	st, err := h.stopper.Begin(ctx, stopruntime.Input{
		GameID:        gameID,
		Reason:        job.Reason,
		OpSource:      stopruntime.OpSourceLobbyStream,
		SourceRef:     d.ID(),
		RequestedAtMS: requestedAt,
	})
	if err != nil {
		return h.failed(ctx, log, d, start, gameID, err)
	}
	if res, ok := st.Answer(); ok {
		return h.answer(ctx, log, d, start, gameID, res)
	}
	// Waiting for the runtime to exit must not hold the worker: the broker
	// runs the rest as a continuation, the job still held (its game's later
	// jobs wait, no other consumer claims it) and answered when it ends.
	d.Continue(func(ctx context.Context) error {
		res, err := st.Finish(ctx)
		if err != nil {
			return h.failed(ctx, log, d, start, gameID, err)
		}
		return h.answer(ctx, log, d, start, gameID, res)
	})
	return nil
}

// failed applies the error policy to an orchestrator error: retry, or on
// the last delivery a failure answer and a dead letter.
func (h *Handler) failed(ctx context.Context, log *jobLog, d Delivery, start time.Time, gameID string, err error) error {
	code := errorCode(err)
	if !d.Final() {
		h.opts.Metrics.Retry(code)
		log.get().Warn("stop job will be retried", "error_code", code, "err", clip(err.Error()))
		return fmt.Errorf("stop game %s: %w", gameID, err)
	}
	d.DeadLetter(deadMaxDeliveries, err.Error())
	return h.answerFailure(ctx, log, d, start, gameID, code, err.Error())
}

// answer publishes the orchestrator's answer.
func (h *Handler) answer(ctx context.Context, log *jobLog, d Delivery, start time.Time, gameID string, res stopruntime.Result) error {
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

// check runs the generated validate tags (asyncapi-codegen emits them but
// never runs them) and the contract's constraints the tags lack.
func (h *Handler) check(job runtimejobs.RuntimeStopJobSchema) error {
	if err := h.validate.Struct(job); err != nil {
		var verrs validator.ValidationErrors
		if errors.As(err, &verrs) && len(verrs) > 0 {
			fe := verrs[0]
			return fmt.Errorf("%s: fails %s=%s", fe.Field(), fe.Tag(), fe.Param())
		}
		return err
	}
	if h.gameID != nil && !h.gameID(string(job.GameId)) {
		return fmt.Errorf("game_id: does not match %s", h.gameIDPattern)
	}
	if job.RequestedAtMs != nil && *job.RequestedAtMs < h.minReqAt {
		return fmt.Errorf("requested_at_ms: below %d", h.minReqAt)
	}
	return nil
}

func (h *Handler) result(d Delivery, gameID string) runtimejobs.RuntimeJobResultMessage {
	msg := runtimejobs.NewRuntimeJobResultMessage()
	msg.Payload.JobId = d.ID()
	msg.Payload.GameId = gameID
	msg.Payload.Operation = "stop"
	msg.Payload.CompletedAtMs = h.opts.Now().UnixMilli()
	return msg
}

// answerFailure answers with a failure when the game id can be put in a
// result; otherwise the dead letter is the only record of the job.
func (h *Handler) answerFailure(ctx context.Context, log *jobLog, d Delivery, start time.Time, gameID, code, text string) error {
	if gameID == "" || len(gameID) > h.maxGame {
		log.get().Warn("stop job dead-lettered without a result: game id unreadable", "error_code", code, "err", clip(text))
		h.opts.Metrics.Result("dead_letter_only", code, h.opts.Now().Sub(start))
		return nil
	}
	out := h.result(d, gameID)
	out.Payload.Outcome = string(stopruntime.OutcomeFailure)
	out.Payload.ErrorCode = code
	out.Payload.ErrorMessage = text
	return h.send(ctx, log, start, out)
}

func (h *Handler) send(ctx context.Context, log *jobLog, start time.Time, out runtimejobs.RuntimeJobResultMessage) error {
	if err := h.sender.SendAsSendJobResultOperation(ctx, out); err != nil {
		log.get().Error("publish job result", "err", clip(err.Error()))
		return fmt.Errorf("publish result of job %s: %w", out.Payload.JobId, err)
	}
	took := h.opts.Now().Sub(start)
	h.opts.Metrics.Result(out.Payload.Outcome, out.Payload.ErrorCode, took)
	if h.log.Enabled(ctx, slog.LevelInfo) {
		log.get().Info("stop job processed", "outcome", out.Payload.Outcome, "error_code", out.Payload.ErrorCode,
			"duration_ms", float64(took.Microseconds())/1000)
	}
	return nil
}

// jobLog is the job's logger, built only when a line is written: With
// formats its attributes at once, which cost more than the rest of a job's
// handling when the level drops every line.
type jobLog struct {
	h           *Handler
	d           Delivery
	gameID      string
	reason      string
	requestedAt int64
	l           *slog.Logger
}

func (j *jobLog) get() *slog.Logger {
	if j.l == nil {
		j.l = j.h.log.With("entry_id", j.d.ID(), "job_id", j.d.ID(), "game_id", clip(j.gameID), "reason", clip(j.reason),
			"requested_at_ms", j.requestedAt, "delivery", j.d.Count())
	}
	return j.l
}

// errorCode names a Go error of the orchestrator for the wire.
func errorCode(err error) string {
	switch {
	case errors.Is(err, stopruntime.ErrTransient), errors.Is(err, stopruntime.ErrBusy):
		return stopruntime.CodeRuntimeUnavailable
	default:
		return stopruntime.CodeInternal
	}
}
