package redisstream

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/lerenn/asyncapi-codegen/pkg/extensions"
)

// A reader is made of parts, one file each, sharing the state below under
// r.mu:
//   - keyqueue.go: the partition-key queue (plain data);
//   - readloop.go: the read loop (XREADGROUP, or XREAD for group-less
//     channels) and how much it may read;
//   - settle.go: Ack, Nak and redelivery;
//   - deadletter.go: the dead-letter entry;
//   - maintain.go: the maintenance loop: keeping held entries fresh,
//     claiming abandoned ones, removing idle consumers;
//   - commit.go: the commit loop (publish-and-ack in batches);
//   - outage.go: pausing while Redis is unreachable;
//   - shutdown.go: stopping, and waiting for what is in flight.
// This file wires them: the reader's state, its workers, and run, which
// starts the loops.

// worker is one subscription of a channel: one generated controller's
// message loop, which handles one entry at a time.
type worker struct {
	sub     extensions.BrokerChannelSubscription
	current *Delivery
	removed bool
}

// reader consumes one channel for the whole process: it reads and claims
// entries, queues them by partition key, hands them to idle workers, and
// commits their acknowledgements.
type reader struct {
	b      *Broker
	ci     *channelInfo
	shards []*shard // the channel's stream keys (shard.go)

	ctx        context.Context // reading lifetime: ends at shutdown
	cancel     context.CancelFunc
	wake       waker // capacity freed or workers added: wakes every read loop
	back       waker // an outage ended: wakes every read loop
	commit     chan commitReq
	commitStop chan struct{}   // closed by shutdown: commit what is queued, then stop
	commitDone chan struct{}   // closed when the commit loop has stopped
	done       chan struct{}   // closed when run returns
	contCtx    context.Context // continuations' lifetime: ends when Close gives up
	contCancel context.CancelFunc
	contSlots  chan struct{} // one per running continuation; nil: run them in the worker

	mu         sync.Mutex
	workers    []*worker
	q          keyQueue
	continuing int   // held entries in a continuation (continue.go)
	reserved   int   // entries asked for by reads on the wire (readloop.go)
	entryEst   int64 // largest entry size lately read, 0 before any (inhand.go)
	draining   bool
	outage     bool   // Redis unreachable: dispatch paused (outage.go)
	outages    uint64 // outages begun so far (outage.go)

	logs rateLog
}

func newReader(b *Broker, ci *channelInfo) *reader {
	ctx, cancel := context.WithCancel(context.Background())
	contCtx, contCancel := context.WithCancel(context.Background())
	var slots chan struct{}
	if n := b.opts.MaxContinuing; n > 0 {
		slots = make(chan struct{}, n)
	}
	return &reader{
		contCtx:    contCtx,
		contCancel: contCancel,
		contSlots:  slots,
		b:          b,
		ci:         ci,
		shards:     newShards(ci, b.layout.Sharded),
		ctx:        ctx,
		cancel:     cancel,
		commit:     make(chan commitReq, 4*b.opts.CommitBatch),
		commitStop: make(chan struct{}),
		commitDone: make(chan struct{}),
		done:       make(chan struct{}),
		q:          newKeyQueue(),
		logs:       rateLog{log: b.log.With("stream", ci.address), every: 10 * time.Second},
	}
}

// run drives the channel until shutdown.
func (r *reader) run() {
	defer close(r.done)
	var wg sync.WaitGroup
	wg.Add(2)
	// One commit loop: acknowledgements gather while a batch is on the
	// wire. A second loop halved the batches and cost the whole pipeline
	// more round trips than it saved in waiting (docs/benchmarks.md).
	go func() { defer wg.Done(); r.commitLoop(); close(r.commitDone) }()
	go func() { defer wg.Done(); r.maintainLoop() }()
	for _, shs := range r.readGroups() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r.ci.group == "" {
				r.tailLoop(shs)
			} else {
				r.readLoop(shs)
			}
		}()
	}
	wg.Wait()
}

func (r *reader) signal() {
	r.wake.signal()
}

func (r *reader) prefetch() int {
	if p := r.b.opts.Prefetch; p > 0 {
		return p
	}
	return 2*r.b.opts.ReadCount + len(r.workers)
}

func (r *reader) addWorker(sub extensions.BrokerChannelSubscription) *worker {
	w := &worker{sub: sub}
	r.mu.Lock()
	r.workers = append(r.workers, w)
	r.q.workerAdded(w)
	r.dispatchLocked()
	r.mu.Unlock()
	r.signal()
	return w
}

// removeWorker runs when a subscription is cancelled. An entry already sent
// to it is still handled: the generated loop drains its channel.
//
// Two entries would otherwise stay in hand for good:
//   - one sent to it that its loop has not taken yet (the channel has room
//     for one): it is taken back and goes to the front again;
//   - on a group-less channel, the one it took and let fall without Ack
//     or Nak (a request/reply caller reading a reply that is not its own):
//     it is forgotten. There Ack does nothing, so a late one is harmless.
//     With a group the entry stays held: its handler may still run, and
//     Ack it.
func (r *reader) removeWorker(w *worker) {
	r.mu.Lock()
	defer r.mu.Unlock()
	select {
	case m, ok := <-w.sub.MessagesChannel():
		if d := w.current; ok && d != nil && r.q.held[d.ref()] == d {
			_ = m // never seen by the handler
			r.q.workerDone(d)
			r.q.pushFront(d)
		}
	default:
		if d := w.current; d != nil && r.ci.group == "" {
			r.q.workerDone(d)
			r.q.finish(d)
		}
	}
	r.q.workerRemoved(w)
	r.workers = remove(r.workers, w)
	if len(r.workers) == 0 {
		// Nobody left to handle queued entries: let them go, still pending,
		// so another consumer can claim them.
		r.q.releaseQueued()
	}
	r.dispatchLocked()
	r.signal() // room may have been freed
}

// lookup finds the delivery a received message was made from by its
// payload's backing array (keyQueue.byPayload), which the generated
// controller's copies of the message keep.
func (r *reader) lookup(payload *byte) *Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.q.byPayload[payload]
}

func (r *reader) health() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, sh := range r.shards {
		if sh.readErr == nil {
			continue
		}
		if len(r.shards) == 1 {
			return sh.readErr
		}
		return fmt.Errorf("%s: %w", sh.key, sh.readErr)
	}
	if len(r.workers) == 0 && !r.draining {
		return errors.New("no subscription")
	}
	return nil
}

// dispatchLocked hands ready entries to idle workers. Workers' channels
// have room for one entry and only idle workers get one, so it never blocks.
func (r *reader) dispatchLocked() {
	if r.outage {
		return
	}
	r.q.dispatch(r.transmitLocked)
}

func (r *reader) transmitLocked(w *worker, d *Delivery) {
	d.outages = r.outages
	w.sub.TransmitReceivedMessage(d.message())
}

// workerDoneLocked frees the worker that handled d.
func (r *reader) workerDoneLocked(d *Delivery) {
	r.q.workerDone(d)
}

// finish forgets d: its partition key passes to the next entry of the key.
func (r *reader) finish(d *Delivery) {
	r.mu.Lock()
	r.q.finish(d)
	r.dispatchLocked()
	r.unlockWakingReader()
}

// unlockWakingReader releases r.mu and wakes the reader if it may read now;
// a reader waiting for a full batch of room is not woken for less.
func (r *reader) unlockWakingReader() {
	read := r.readCountLocked() > 0
	r.mu.Unlock()
	if read {
		r.signal()
	}
}

func (r *reader) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.ctx.Done():
	}
}

// backoff is capped exponential with jitter in [d/2, d].
func backoff(lo, hi time.Duration, attempt int) time.Duration {
	d := lo << min(attempt, 20)
	if d > hi || d <= 0 {
		d = hi
	}
	return d/2 + rand.N(d/2+1)
}
