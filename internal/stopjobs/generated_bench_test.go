package stopjobs_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lerenn/asyncapi-codegen/pkg/extensions"

	"galaxy/rtmanager/gen/runtimejobs"
)

// memBroker hands messages to the generated controller over a channel and
// drops what it publishes: no Redis, no rtmanager code, so what a message
// costs here is what the generated controllers cost any consumer that keeps
// them in its path (issue 16's restated targets hold rtmanager to a loop
// without them).
type memBroker struct {
	msgs      chan extensions.AcknowledgeableBrokerMessage
	published atomic.Int64
}

func (b *memBroker) Publish(context.Context, string, extensions.BrokerMessage) error {
	b.published.Add(1)
	return nil
}

func (b *memBroker) Subscribe(context.Context, string) (extensions.BrokerChannelSubscription, error) {
	sub := extensions.NewBrokerChannelSubscription(b.msgs, make(chan any))
	sub.WaitForCancellationAsync(func() {})
	return sub, nil
}

// countAck closes done at the want-th acknowledgement.
type countAck struct {
	acked *atomic.Int64
	want  int64
	done  chan struct{}
}

func (a countAck) AckMessage() {
	if a.acked.Add(1) == a.want {
		close(a.done)
	}
}
func (a countAck) NakMessage() {}

// BenchmarkGeneratedControllerFloor is one stop job through the generated
// subscription (channel hand-off, contexts, the message's String, JSON
// decode, the middleware chain, ack) and its answer through the generated
// publisher (JSON encode, String, middleware chain), with a handler that
// does nothing else. `cpu-µs/msg` is the process's CPU per message (both
// sides of the hand-off), to set beside rtbench's client CPU per job.
func BenchmarkGeneratedControllerFloor(b *testing.B) {
	br := &memBroker{msgs: make(chan extensions.AcknowledgeableBrokerMessage, 256)}
	// One pass-through middleware, as rtmanager's broker installs one.
	ctrl, err := runtimejobs.NewAppController(br, runtimejobs.WithMiddlewares(
		func(ctx context.Context, _ *extensions.BrokerMessage, next extensions.NextMiddleware) error {
			return next(ctx)
		}))
	if err != nil {
		b.Fatal(err)
	}
	err = ctrl.SubscribeToReceiveStopJobOperation(context.Background(), func(ctx context.Context, msg runtimejobs.RuntimeStopJobMessage) error {
		out := runtimejobs.NewRuntimeJobResultMessage()
		out.Payload = runtimejobs.RuntimeJobResultSchema{JobId: "1764560000000-0", GameId: string(msg.Payload.GameId),
			Operation: "stop", Outcome: "success", CompletedAtMs: time.Now().UnixMilli()}
		return ctrl.SendAsSendJobResultOperation(ctx, out)
	})
	if err != nil {
		b.Fatal(err)
	}
	defer ctrl.Close(context.Background())
	payloads := make([][]byte, 1024)
	for i := range payloads {
		payloads[i] = []byte(`{"game_id":"g-` + strconv.Itoa(i) + `","reason":"game_finished","requested_at_ms":1764560000000}`)
	}
	ack := countAck{acked: new(atomic.Int64), want: int64(b.N), done: make(chan struct{})}
	cpu0 := processCPU()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		br.msgs <- extensions.NewAcknowledgeableBrokerMessage(extensions.BrokerMessage{Headers: map[string][]byte{}, Payload: payloads[i%len(payloads)]}, ack)
	}
	<-ack.done
	b.StopTimer()
	b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(b.N), "cpu-µs/msg")
	if got := br.published.Load(); got != int64(b.N) {
		b.Fatalf("published %d answers for %d messages", got, b.N)
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
