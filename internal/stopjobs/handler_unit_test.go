package stopjobs_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/stopjobs"
	"galaxy/rtmanager/internal/stopruntime"
)

// Unit tests of the handler's error policy against fakes of its own ports
// (Delivery, Sender, Stopper); stopjobs_test.go runs the same policy end to
// end through the broker and Redis.

type fakeDelivery struct {
	id        string
	count     int64
	final     bool
	dead      string
	deadError string

	// What the handler asked for.
	deadReason, deadErr string
	deadCalls           int
}

func (d *fakeDelivery) ID() string        { return d.id }
func (d *fakeDelivery) Count() int64      { return d.count }
func (d *fakeDelivery) Final() bool       { return d.final }
func (d *fakeDelivery) Dead() string      { return d.dead }
func (d *fakeDelivery) DeadError() string { return d.deadError }
func (d *fakeDelivery) Continue(func(context.Context) error) {
	panic("fakeStopper answers every stop at its begin step")
}
func (d *fakeDelivery) DeadLetter(reason, err string) {
	d.deadCalls++
	d.deadReason, d.deadErr = reason, err
}

type fakeSender struct {
	mu   sync.Mutex
	sent []runtimejobs.RuntimeJobResultMessage
	err  error
}

func (s *fakeSender) SendAsSendJobResultOperation(_ context.Context, msg runtimejobs.RuntimeJobResultMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.sent = append(s.sent, msg)
	return nil
}

type fakeStopper struct {
	res   stopruntime.Result
	err   error
	calls []stopruntime.Input
}

// Begin answers at once (or fails, as a busy stop does); the continuation
// path is covered end to end in stopjobs_test.go.
func (s *fakeStopper) Begin(_ context.Context, in stopruntime.Input) (stopruntime.Begun, error) {
	s.calls = append(s.calls, in)
	if s.err != nil {
		return nil, s.err
	}
	return answeredStop{s.res}, nil
}

// answeredStop is a stop the begin step answered.
type answeredStop struct{ res stopruntime.Result }

func (a answeredStop) Answer() (stopruntime.Result, bool) { return a.res, true }
func (a answeredStop) Finish(context.Context) (stopruntime.Result, error) {
	return a.res, nil
}

type fakeMetrics struct {
	results []string // outcome/error_code
	retries []string
}

func (m *fakeMetrics) Result(outcome, code string, _ time.Duration) {
	m.results = append(m.results, outcome+"/"+code)
}
func (m *fakeMetrics) Retry(code string) { m.retries = append(m.retries, code) }

var unitNow = time.UnixMilli(1_800_000_000_000)

func newUnit(t *testing.T, st *fakeStopper, snd *fakeSender, d *fakeDelivery) (*stopjobs.Handler, *fakeMetrics) {
	t.Helper()
	m := &fakeMetrics{}
	h, err := stopjobs.New(st, snd, stopjobs.Options{
		DeliveryFrom: func(context.Context) (stopjobs.Delivery, bool) { return d, d != nil },
		Metrics:      m,
		Now:          func() time.Time { return unitNow },
	})
	require.NoError(t, err)
	return h, m
}

func stopMsg(gameID, reason string) runtimejobs.RuntimeStopJobMessage {
	msg := runtimejobs.NewRuntimeStopJobMessage()
	msg.Payload.GameId = runtimejobs.GameIDSchema(gameID)
	msg.Payload.Reason = reason
	return msg
}

func TestUnitSuccessAnswersWithTheRecord(t *testing.T) {
	st := &fakeStopper{res: stopruntime.Result{
		Outcome: stopruntime.OutcomeSuccess,
		Record:  stopruntime.Record{ContainerID: "c1", EngineEndpoint: "http://e"},
	}}
	snd, d := &fakeSender{}, &fakeDelivery{id: "1-1", count: 1}
	h, m := newUnit(t, st, snd, d)

	msg := stopMsg("  g1 ", "game_finished")
	at := int64(1_700_000_000_000)
	msg.Payload.RequestedAtMs = &at
	require.NoError(t, h.ReceiveStopJobOperationReceived(context.Background(), msg))

	require.Len(t, st.calls, 1)
	assert.Equal(t, stopruntime.Input{
		GameID: "g1", Reason: "game_finished", OpSource: stopruntime.OpSourceLobbyStream,
		SourceRef: "1-1", RequestedAtMS: at,
	}, st.calls[0], "the game id is trimmed and the entry id is the source ref")
	require.Len(t, snd.sent, 1)
	p := snd.sent[0].Payload
	assert.Equal(t, "1-1", p.JobId)
	assert.Equal(t, "g1", p.GameId)
	assert.Equal(t, "stop", p.Operation)
	assert.Equal(t, "success", p.Outcome)
	assert.Equal(t, "c1", p.ContainerId)
	assert.Equal(t, "http://e", p.EngineEndpoint)
	assert.Equal(t, unitNow.UnixMilli(), p.CompletedAtMs)
	assert.Zero(t, d.deadCalls)
	assert.Equal(t, []string{"success/"}, m.results)
}

func TestUnitStopFailureKeepsNoContainer(t *testing.T) {
	st := &fakeStopper{res: stopruntime.Result{
		Outcome: stopruntime.OutcomeFailure, ErrorCode: stopruntime.CodeStopFailed, ErrorMessage: "boom",
		Record: stopruntime.Record{ContainerID: "c1"},
	}}
	snd, d := &fakeSender{}, &fakeDelivery{id: "1-1", count: 1}
	h, _ := newUnit(t, st, snd, d)
	require.NoError(t, h.ReceiveStopJobOperationReceived(context.Background(), stopMsg("g1", "admin_request")))
	require.Len(t, snd.sent, 1)
	p := snd.sent[0].Payload
	assert.Equal(t, "failure", p.Outcome)
	assert.Equal(t, stopruntime.CodeStopFailed, p.ErrorCode)
	assert.Equal(t, "boom", p.ErrorMessage)
	assert.Empty(t, p.ContainerId, "only a success reports the container")
	assert.Zero(t, d.deadCalls)
}

func TestUnitInvalidJobIsDeadLetteredAndAnswered(t *testing.T) {
	for name, msg := range map[string]runtimejobs.RuntimeStopJobMessage{
		"unknown reason":  stopMsg("g1", "because"),
		"game id pattern": stopMsg("g{1}", "game_finished"),
		"requested_at below": func() runtimejobs.RuntimeStopJobMessage {
			m := stopMsg("g1", "game_finished")
			v := int64(-5)
			m.Payload.RequestedAtMs = &v
			return m
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			st, snd, d := &fakeStopper{}, &fakeSender{}, &fakeDelivery{id: "2-1", count: 1}
			h, m := newUnit(t, st, snd, d)
			require.NoError(t, h.ReceiveStopJobOperationReceived(context.Background(), msg))
			assert.Empty(t, st.calls, "an invalid job never reaches the orchestrator")
			assert.Equal(t, 1, d.deadCalls)
			assert.Equal(t, "invalid", d.deadReason)
			require.Len(t, snd.sent, 1)
			p := snd.sent[0].Payload
			assert.Equal(t, "failure", p.Outcome)
			assert.Equal(t, stopruntime.CodeInvalidJob, p.ErrorCode)
			assert.Equal(t, d.deadErr, p.ErrorMessage, "the result and the dead letter give the same reason")
			assert.Equal(t, []string{"failure/invalid_job"}, m.results)
		})
	}
}

// Without a readable game id no result can be built: the dead letter is the
// only record.
func TestUnitInvalidJobWithoutGameIDIsOnlyDeadLettered(t *testing.T) {
	for name, id := range map[string]string{"empty": "  ", "too long": strings.Repeat("g", 129)} {
		t.Run(name, func(t *testing.T) {
			st, snd, d := &fakeStopper{}, &fakeSender{}, &fakeDelivery{id: "2-2", count: 1}
			h, m := newUnit(t, st, snd, d)
			require.NoError(t, h.ReceiveStopJobOperationReceived(context.Background(), stopMsg(id, "game_finished")))
			assert.Equal(t, "invalid", d.deadReason)
			assert.Empty(t, snd.sent)
			assert.Equal(t, []string{"dead_letter_only/invalid_job"}, m.results)
		})
	}
}

func TestUnitTransientErrorIsRetriedWithoutResult(t *testing.T) {
	for name, err := range map[string]error{
		"transient": fmt.Errorf("%w: daemon unreachable", stopruntime.ErrTransient),
		"busy":      fmt.Errorf("another stop: %w", stopruntime.ErrBusy),
		"other":     errors.New("redis: connection refused"),
	} {
		t.Run(name, func(t *testing.T) {
			st, snd, d := &fakeStopper{err: err}, &fakeSender{}, &fakeDelivery{id: "3-1", count: 2}
			h, m := newUnit(t, st, snd, d)
			got := h.ReceiveStopJobOperationReceived(context.Background(), stopMsg("g1", "game_finished"))
			require.ErrorIs(t, got, err, "the broker retries the job when the handler returns an error")
			assert.Empty(t, snd.sent)
			assert.Zero(t, d.deadCalls)
			assert.Len(t, m.retries, 1)
			assert.Empty(t, m.results)
		})
	}
}

func TestUnitFinalDeliveryAnswersAndDeadLetters(t *testing.T) {
	for name, tc := range map[string]struct {
		err  error
		code string
	}{
		"transient": {fmt.Errorf("%w: daemon unreachable", stopruntime.ErrTransient), stopruntime.CodeRuntimeUnavailable},
		"busy":      {fmt.Errorf("another stop: %w", stopruntime.ErrBusy), stopruntime.CodeRuntimeUnavailable},
		"other":     {errors.New("redis: connection refused"), stopruntime.CodeInternal},
	} {
		t.Run(name, func(t *testing.T) {
			st, snd, d := &fakeStopper{err: tc.err}, &fakeSender{}, &fakeDelivery{id: "3-2", count: 5, final: true}
			h, m := newUnit(t, st, snd, d)
			require.NoError(t, h.ReceiveStopJobOperationReceived(context.Background(), stopMsg("g1", "game_finished")))
			assert.Equal(t, 1, d.deadCalls)
			assert.Equal(t, "max_deliveries", d.deadReason)
			assert.Equal(t, tc.err.Error(), d.deadErr)
			require.Len(t, snd.sent, 1)
			p := snd.sent[0].Payload
			assert.Equal(t, "failure", p.Outcome)
			assert.Equal(t, tc.code, p.ErrorCode)
			assert.Equal(t, tc.err.Error(), p.ErrorMessage)
			assert.Empty(t, m.retries)
		})
	}
}

// An entry the broker dead-letters anyway (undecodable, or past its
// deliveries) is answered without running the stop.
func TestUnitAlreadyDeadEntryIsAnswered(t *testing.T) {
	for dead, code := range map[string]string{
		"undecodable":    stopruntime.CodeInvalidJob,
		"max_deliveries": stopruntime.CodeInternal,
	} {
		t.Run(dead, func(t *testing.T) {
			st, snd := &fakeStopper{}, &fakeSender{}
			d := &fakeDelivery{id: "4-1", count: 1, dead: dead, deadError: "field requested_at_ms: not a number"}
			h, _ := newUnit(t, st, snd, d)
			require.NoError(t, h.ReceiveStopJobOperationReceived(context.Background(), stopMsg("g1", "game_finished")))
			assert.Empty(t, st.calls)
			assert.Zero(t, d.deadCalls, "the broker dead-letters it already")
			require.Len(t, snd.sent, 1)
			p := snd.sent[0].Payload
			assert.Equal(t, "4-1", p.JobId)
			assert.Equal(t, "failure", p.Outcome)
			assert.Equal(t, code, p.ErrorCode)
			assert.Equal(t, d.deadError, p.ErrorMessage)
		})
	}
}

func TestUnitSendErrorIsReturned(t *testing.T) {
	sendErr := errors.New("pipeline full")
	st := &fakeStopper{res: stopruntime.Result{Outcome: stopruntime.OutcomeSuccess}}
	snd, d := &fakeSender{err: sendErr}, &fakeDelivery{id: "5-1", count: 1}
	h, m := newUnit(t, st, snd, d)
	err := h.ReceiveStopJobOperationReceived(context.Background(), stopMsg("g1", "game_finished"))
	require.ErrorIs(t, err, sendErr)
	assert.Contains(t, err.Error(), "5-1")
	assert.Empty(t, m.results)
}

func TestUnitMissingDeliveryIsAWiringError(t *testing.T) {
	st, snd := &fakeStopper{}, &fakeSender{}
	h, _ := newUnit(t, st, snd, nil)
	err := h.ReceiveStopJobOperationReceived(context.Background(), stopMsg("g1", "game_finished"))
	require.ErrorContains(t, err, "without delivery")
	assert.Empty(t, st.calls)
	assert.Empty(t, snd.sent)
}

func TestUnitNewRequiresItsPorts(t *testing.T) {
	from := func(context.Context) (stopjobs.Delivery, bool) { return nil, false }
	_, err := stopjobs.New(nil, &fakeSender{}, stopjobs.Options{DeliveryFrom: from})
	require.Error(t, err)
	_, err = stopjobs.New(&fakeStopper{}, nil, stopjobs.Options{DeliveryFrom: from})
	require.Error(t, err)
	_, err = stopjobs.New(&fakeStopper{}, &fakeSender{}, stopjobs.Options{})
	require.Error(t, err)
}
