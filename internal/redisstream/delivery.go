package redisstream

import (
	"context"
	"sync"

	"github.com/lerenn/asyncapi-codegen/pkg/extensions"
)

type deliveryKey struct{}

// Delivery is one received stream entry while it is handled. The handler
// finds it in its context (DeliveryFrom) when the controller was given the
// broker's Middleware.
type Delivery struct {
	r      *reader
	sh     *shard // the stream key it was read from
	id     string
	values map[string]any // the entry's original fields
	key    string         // partition key value
	size   int64          // bytes held: names and values (keyqueue.go)
	dec    decoded

	// Owned by the reader (under r.mu).
	count      int64 // deliveries so far, this one included
	worker     *worker
	retrying   bool   // Nak'ed, waiting for its backoff to end
	continuing bool   // handled by a continuation, its worker freed (continue.go)
	outages    uint64 // the reader's outage count when this handling began (outage.go)

	mu         sync.Mutex
	hctx       context.Context             // the handler's context, with the delivery in it
	cont       func(context.Context) error // set by Continue during this handling
	pubs       []publication
	pub0       [1]publication // pubs' first array: a handler publishes one result
	lastErr    error
	deadReason string // set when the entry is dead-lettered on Ack or Nak
	deadErr    string
}

type publication struct {
	channel *channelInfo
	fields  []string
}

// DeliveryFrom returns the entry being handled, if ctx belongs to a handler
// of a subscription made through this package's broker and Middleware.
func DeliveryFrom(ctx context.Context) (*Delivery, bool) {
	d := deliveryFrom(ctx)
	return d, d != nil
}

func deliveryFrom(ctx context.Context) *Delivery {
	d, _ := ctx.Value(deliveryKey{}).(*Delivery)
	return d
}

// ID is the entry id on the stream.
func (d *Delivery) ID() string { return d.id }

// Stream is the stream key the entry was read from: the channel's address,
// or its shard's key when the layout is sharded.
func (d *Delivery) Stream() string {
	if d.sh != nil {
		return d.sh.key
	}
	return d.r.ci.address
}

// Shard is the shard the entry was read from (0 when not sharded).
func (d *Delivery) Shard() int {
	if d.sh != nil {
		return d.sh.n
	}
	return 0
}

// Count is how many times the entry has been delivered, this time included.
func (d *Delivery) Count() int64 {
	d.r.mu.Lock()
	defer d.r.mu.Unlock()
	return d.count
}

// Final reports whether this is the last delivery: a Nak now dead-letters
// the entry instead of retrying it.
func (d *Delivery) Final() bool {
	return d.Count() >= int64(d.r.b.opts.MaxDeliveries) || d.Dead() != ""
}

// Dead returns the dead-letter reason the entry carries already (the broker
// could not decode it, or it ran out of deliveries), or "". Such an entry is
// dead-lettered whether the handler acknowledges it or not; the handler may
// still answer it.
func (d *Delivery) Dead() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.deadReason
}

// DeadError is the error that goes with Dead.
func (d *Delivery) DeadError() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.deadErr
}

// DeadLetter asks for the entry to be copied to the channel's dead-letter
// stream, with reason and error, in the same atomic step as its
// acknowledgement. The handler then returns nil (Ack).
func (d *Delivery) DeadLetter(reason, err string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.deadReason == "" {
		d.deadReason, d.deadErr = reason, err
	}
}

// Continue hands the rest of the entry's handling to fn, which runs outside
// the worker once the handler returns nil: the worker takes its next entry
// at once, while this one stays held (its partition key busy, refreshed so
// no other consumer claims it). fn's context carries the delivery, so a
// SendAs… called in fn joins the entry's acknowledgement as the handler's
// would. When fn returns nil the entry is acknowledged (committed with its
// publications); an error, or a panic, is a Nak (retry, or dead letter on
// the last delivery). If the handler returns an error, fn never runs. fn's
// context ends when Close gives up waiting; the entry then stays pending.
// Continuations are bounded by Options.MaxContinuing.
func (d *Delivery) Continue(fn func(ctx context.Context) error) {
	d.mu.Lock()
	d.cont = fn
	d.mu.Unlock()
}

// handing records the handler's context, as a new handling begins.
func (d *Delivery) handing(ctx context.Context) {
	d.mu.Lock()
	d.hctx, d.cont = ctx, nil
	d.mu.Unlock()
}

// takeContinuation returns, and clears, what Continue asked for.
func (d *Delivery) takeContinuation() (context.Context, func(context.Context) error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, fn := d.hctx, d.cont
	d.hctx, d.cont = nil, nil
	return ctx, fn
}

func (d *Delivery) buffer(p publication) {
	d.mu.Lock()
	if d.pubs == nil {
		// Not shared: a handling's pubs go to one commit and are dropped
		// (nil) before the next handling buffers any.
		d.pubs = d.pub0[:0]
	}
	d.pubs = append(d.pubs, p)
	d.mu.Unlock()
}

func (d *Delivery) setErr(err error) {
	d.mu.Lock()
	d.lastErr = err
	d.mu.Unlock()
}

// message builds what the generated controller receives. Middleware finds
// d again by the payload's backing array (keyQueue.byPayload). The headers
// are the entry's own (payload encoding), copied so a handler cannot change
// what a retry gets, plus the dead-letter pair when it applies; usually
// none, which keeps the generated BrokerMessage.String to one Sprintf.
func (d *Delivery) message() extensions.AcknowledgeableBrokerMessage {
	var h map[string][]byte
	d.mu.Lock()
	dead := d.deadReason != ""
	if dead || len(d.dec.headers) > 0 {
		h = make(map[string][]byte, len(d.dec.headers)+2)
		for k, v := range d.dec.headers {
			h[k] = v
		}
	}
	if dead {
		h[HeaderDeadReason] = []byte(d.deadReason)
		h[HeaderDeadError] = []byte(d.deadErr)
	}
	d.mu.Unlock()
	return extensions.NewAcknowledgeableBrokerMessage(
		extensions.BrokerMessage{Headers: h, Payload: d.dec.payload},
		ackHandler{d},
	)
}

type ackHandler struct{ d *Delivery }

func (a ackHandler) AckMessage() { a.d.r.ack(a.d) }
func (a ackHandler) NakMessage() { a.d.r.nak(a.d) }
