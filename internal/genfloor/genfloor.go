// Package genfloor measures what asyncapi-codegen's generated controllers
// alone cost a stop job and its answer: the job goes through the generated
// subscription (the channel hand-off, contexts, the message's String, JSON
// decode, the middleware chain, the ack) and its answer through the
// generated publisher (JSON encode, String, the middleware chain), on an
// in-memory broker, with a handler that does nothing else. No Redis and no
// rtmanager code: it is the floor under the client CPU per job of any
// consumer that keeps the generated controllers in its path, as rtmanager
// does (issue 16), and what rtbench sets beside the Redis ceiling.
package genfloor

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lerenn/asyncapi-codegen/pkg/extensions"

	"galaxy/rtmanager/gen/runtimejobs"
)

// Result is one measurement of n messages.
type Result struct {
	Messages int
	// CPU is the process's user and system CPU over the run (getrusage):
	// both sides of every hand-off, and whatever else the process did
	// meanwhile, so measure in a process that is otherwise idle.
	CPU time.Duration
	// Allocs and Bytes are the process's heap allocations over the run.
	Allocs, Bytes uint64
	Wall          time.Duration
}

// CPUPerMsg is the CPU per message in microseconds.
func (r Result) CPUPerMsg() float64 {
	if r.Messages == 0 {
		return 0
	}
	return float64(r.CPU) / float64(time.Microsecond) / float64(r.Messages)
}

// AllocsPerMsg is the heap allocations per message.
func (r Result) AllocsPerMsg() float64 {
	if r.Messages == 0 {
		return 0
	}
	return float64(r.Allocs) / float64(r.Messages)
}

// BytesPerMsg is the heap bytes allocated per message.
func (r Result) BytesPerMsg() float64 {
	if r.Messages == 0 {
		return 0
	}
	return float64(r.Bytes) / float64(r.Messages)
}

// Run sends n stop jobs through a generated AppController and waits until
// each has been answered and acknowledged. It fails if any was not, or
// when ctx ends first.
func Run(ctx context.Context, n int) (Result, error) {
	if n <= 0 {
		return Result{}, fmt.Errorf("genfloor: %d messages: want at least one", n)
	}
	br := &memBroker{msgs: make(chan extensions.AcknowledgeableBrokerMessage, 256)}
	// One pass-through middleware, as rtmanager's broker installs one.
	ctrl, err := runtimejobs.NewAppController(br, runtimejobs.WithMiddlewares(
		func(ctx context.Context, _ *extensions.BrokerMessage, next extensions.NextMiddleware) error {
			return next(ctx)
		}))
	if err != nil {
		return Result{}, fmt.Errorf("genfloor: new controller: %w", err)
	}
	defer ctrl.Close(context.Background())
	err = ctrl.SubscribeToReceiveStopJobOperation(ctx, func(ctx context.Context, msg runtimejobs.RuntimeStopJobMessage) error {
		out := runtimejobs.NewRuntimeJobResultMessage()
		out.Payload = runtimejobs.RuntimeJobResultSchema{JobId: "1764560000000-0", GameId: string(msg.Payload.GameId),
			Operation: "stop", Outcome: "success", CompletedAtMs: time.Now().UnixMilli()}
		return ctrl.SendAsSendJobResultOperation(ctx, out)
	})
	if err != nil {
		return Result{}, fmt.Errorf("genfloor: subscribe: %w", err)
	}
	// Payloads made before the measurement, as a broker's reads would be
	// outside the controllers' cost.
	payloads := make([][]byte, 1024)
	for i := range payloads {
		payloads[i] = []byte(`{"game_id":"g-` + strconv.Itoa(i) + `","reason":"game_finished","requested_at_ms":1764560000000}`)
	}
	ack := &countAck{want: int64(n), done: make(chan struct{})}

	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	cpu0, began := processCPU(), time.Now()
	for i := 0; i < n; i++ {
		msg := extensions.NewAcknowledgeableBrokerMessage(extensions.BrokerMessage{Headers: map[string][]byte{}, Payload: payloads[i%len(payloads)]}, ack)
		select {
		case br.msgs <- msg:
		case <-ctx.Done():
			return Result{}, fmt.Errorf("genfloor: %d of %d messages sent: %w", i, n, ctx.Err())
		}
	}
	select {
	case <-ack.done:
	case <-ctx.Done():
		return Result{}, fmt.Errorf("genfloor: %d of %d messages settled: %w", ack.settledN.Load(), n, ctx.Err())
	}
	res := Result{Messages: n, CPU: processCPU() - cpu0, Wall: time.Since(began)}
	runtime.ReadMemStats(&m1)
	res.Allocs, res.Bytes = m1.Mallocs-m0.Mallocs, m1.TotalAlloc-m0.TotalAlloc
	if got := br.published.Load(); got != int64(n) {
		return res, fmt.Errorf("genfloor: %d answers published for %d messages", got, n)
	}
	if nak := ack.naks.Load(); nak > 0 {
		return res, fmt.Errorf("genfloor: %d of %d messages not acknowledged (nak)", nak, n)
	}
	return res, nil
}

// memBroker hands messages to the generated controller over a channel and
// counts what it publishes.
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

// countAck closes done once want messages are settled, acked or not.
type countAck struct {
	settledN, naks atomic.Int64
	want           int64
	done           chan struct{}
}

func (a *countAck) AckMessage() { a.settled() }
func (a *countAck) NakMessage() { a.naks.Add(1); a.settled() }

func (a *countAck) settled() {
	if a.settledN.Add(1) == a.want {
		close(a.done)
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
