// Package redisstream is a Redis Streams broker for asyncapi-codegen's
// generated controllers: it implements extensions.BrokerController, so the
// generated AppController and UserController run on Redis unchanged.
//
// What it guarantees (docs/broker.md has the details):
//   - Channels are read through consumer groups (XREADGROUP) with bounded
//     prefetch; N subscriptions of one channel are N parallel workers that
//     take entries from one shared queue, and entries with equal partition key
//     are never handled concurrently within a process, and in stream order.
//   - A message published while an entry is handled (a generated SendAs…
//     called from the subscriber) is written in the same atomic step as the
//     entry's XACK, and only if this consumer still owns the entry; if the
//     handler fails or the process dies, neither happens.
//   - Nak leaves the entry pending; it is retried after a backoff, and after
//     MaxDeliveries it is dead-lettered and acknowledged in one step.
//     Entries that cannot be mapped onto their message are dead-lettered too.
//   - Redis errors never end a subscription: reads back off and resume, a lost
//     consumer group is recreated where it was.
//
// The wire mapping comes from the contract (package api): see codec.go.
package redisstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"unsafe"

	"github.com/lerenn/asyncapi-codegen/pkg/extensions"
	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/redisclient"
)

// Check that the broker still fills the generated code's interface.
var _ extensions.BrokerController = (*Broker)(nil)

// Headers the broker puts on a received message only when it will
// dead-letter the entry whatever the handler does (undecodable, or out of
// deliveries); the handler may still answer it. The broker adds no other
// header: the generated controllers format every header of every message
// into a string (BrokerMessage.String), which was the largest single cost
// of the broker's per-message path. A handler behind Middleware finds the
// entry's id, delivery count, stream and shard through DeliveryFrom.
const (
	HeaderDeadReason = "redis-dead-reason"
	HeaderDeadError  = "redis-dead-error"
)

// Dead-letter reasons, as the contract's dead_reason enum names them.
const (
	DeadUndecodable   = "undecodable"
	DeadInvalid       = "invalid"
	DeadMaxDeliveries = "max_deliveries"
)

// Observer is told what the broker does, for metrics. Methods must be fast
// and safe for concurrent use.
type Observer interface {
	Received(stream string, n int)
	Redelivered(stream string)
	Committed(stream string, n int)
	DeadLettered(stream, reason string)
	ReadError(stream string, err error)
}

type nopObserver struct{}

func (nopObserver) Received(string, int)        {}
func (nopObserver) Redelivered(string)          {}
func (nopObserver) Committed(string, int)       {}
func (nopObserver) DeadLettered(string, string) {}
func (nopObserver) ReadError(string, error)     {}

// Broker is the Redis Streams BrokerController. One Broker and one Redis
// client serve every controller of a process.
type Broker struct {
	rdb    redis.UniversalClient
	opts   Options
	log    *slog.Logger
	atomic bool
	// layout maps a channel to its stream keys (shard.go); cluster: the
	// client is a Redis Cluster client (one read loop per key).
	layout  api.Layout
	cluster bool

	chMu     sync.RWMutex
	channels map[string]*channelInfo // by address, from the contract

	mu      sync.Mutex
	readers map[string]*reader // by address, while subscribed
	closed  bool
	wg      sync.WaitGroup

	commitFails commitFailures
}

// channelInfo is everything the broker knows about a channel, worked out
// once at start-up.
type channelInfo struct {
	address  string
	keys     []string // stream keys, shard 0 first; one when not sharded
	group    string
	maxLen   int64
	codec    *codec
	dead     *channelInfo // dead-letter channel, nil when none
	deadName string
}

// New creates a broker on an existing client; the caller owns the client.
func New(rdb redis.UniversalClient, opts Options) (*Broker, error) {
	if rdb == nil {
		return nil, errors.New("redisstream: nil redis client")
	}
	o := opts
	if err := o.setDefaults(); err != nil {
		return nil, fmt.Errorf("redisstream: %w", err)
	}
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("redisstream: %w", err)
	}
	b := &Broker{
		rdb:      rdb,
		opts:     o,
		log:      o.Logger.With("component", "redisstream", "consumer", o.Consumer),
		channels: map[string]*channelInfo{},
		readers:  map[string]*reader{},
	}
	// A failing entry comes back at each claim; its record outlives a few
	// claim rounds.
	b.commitFails.ttl = 3*(o.ClaimIdle+o.ClaimInterval) + o.MaxRetryBackoff
	b.cluster = redisclient.IsCluster(rdb)
	layout, err := api.NewLayout(o.Contract, o.Shards, b.cluster)
	if err != nil {
		return nil, fmt.Errorf("redisstream: %w", err)
	}
	b.layout = layout
	// A Cluster always has the sharded layout, where one shard's keys share
	// a slot: the commit script can touch them all. Only an unsharded
	// layout on a Cluster (which NewLayout never gives) could not.
	b.atomic = !b.cluster || layout.Sharded
	if o.Atomic != nil {
		b.atomic = *o.Atomic
	}
	for _, ch := range o.Contract.Channels {
		cd, err := newCodec(ch, o.MaxFieldSize, o.MaxFields)
		if err != nil {
			return nil, fmt.Errorf("redisstream: %w", err)
		}
		ci := &channelInfo{address: ch.Address, keys: layout.Keys(ch), group: ch.Stream.Group, maxLen: ch.Stream.MaxLen, codec: cd, deadName: ch.Stream.DeadLetter}
		if g, ok := o.Groups[ch.Address]; ok {
			ci.group = g
		}
		if m, ok := o.MaxLen[ch.Address]; ok {
			ci.maxLen = m
		}
		b.channels[ch.Address] = ci
	}
	for _, ch := range o.Contract.Channels {
		ci := b.channels[ch.Address]
		if ci.deadName != "" {
			ci.dead = b.channels[o.Contract.Channels[ci.deadName].Address]
		}
	}
	return b, nil
}

// Atomic reports whether publish-and-ack is one atomic step (always,
// unless forced off with Options.Atomic).
func (b *Broker) Atomic() bool { return b.atomic }

// Layout is where the broker's keys are: the shard count and whether the
// sharded addresses are used.
func (b *Broker) Layout() api.Layout { return b.layout }

// ChannelKeys are the stream keys of the channel at address, shard 0
// first (one key when not sharded).
func (b *Broker) ChannelKeys(address string) []string {
	return slices.Clone(b.channel(address).keys)
}

// Keys are the stream keys the broker reads now (every shard key of every
// subscribed channel), sorted: what a probe checks to know that every key
// this process serves is reachable.
func (b *Broker) Keys() []string {
	b.mu.Lock()
	var keys []string
	for _, r := range b.readers {
		for _, sh := range r.shards {
			keys = append(keys, sh.key)
		}
	}
	b.mu.Unlock()
	sort.Strings(keys)
	return keys
}

// channel returns what is known of a channel; channels outside the contract
// use the payload encoding, no group and no bound.
func (b *Broker) channel(addr string) *channelInfo {
	b.chMu.RLock()
	ci, ok := b.channels[addr]
	b.chMu.RUnlock()
	if ok {
		return ci
	}
	b.chMu.Lock()
	defer b.chMu.Unlock()
	if ci, ok := b.channels[addr]; ok {
		return ci
	}
	cd, _ := newCodec(&api.Channel{Key: addr, Address: addr, Stream: api.StreamExtension{Encoding: api.EncodingPayload}}, b.opts.MaxFieldSize, b.opts.MaxFields)
	ci = &channelInfo{address: addr, keys: []string{addr}, codec: cd}
	if g, ok := b.opts.Groups[addr]; ok {
		ci.group = g
	}
	if m, ok := b.opts.MaxLen[addr]; ok {
		ci.maxLen = m
	}
	b.channels[addr] = ci
	return ci
}

// Publish writes a message to the channel's stream. Called while a received
// entry is being handled (its context carries the delivery), the write is
// buffered and happens in the same atomic step as the entry's
// acknowledgement; otherwise it is an XADD now.
func (b *Broker) Publish(ctx context.Context, channel string, bm extensions.BrokerMessage) error {
	ci := b.channel(channel)
	fields, err := ci.codec.encode(bm.Payload, bm.Headers)
	if err != nil {
		return fmt.Errorf("redisstream: publish to %s: %w", channel, err)
	}
	if len(fields) > maxPublicationItems {
		// The commit script could not write it (Lua's unpack limit).
		return fmt.Errorf("redisstream: publish to %s: %d fields, more than the limit of %d", channel, len(fields)/2, maxPublicationItems/2)
	}
	if d := deliveryFrom(ctx); d != nil {
		d.buffer(publication{channel: ci, fields: fields})
		return nil
	}
	key, err := b.publishKey(ci, fields)
	if err != nil {
		return fmt.Errorf("redisstream: publish to %s: %w", channel, err)
	}
	args := &redis.XAddArgs{Stream: key, Values: fields}
	if ci.maxLen > 0 {
		args.MaxLen, args.Approx = ci.maxLen, true
	}
	id, err := b.rdb.XAdd(ctx, args).Result()
	if err != nil {
		return fmt.Errorf("redisstream: publish to %s: %w", channel, err)
	}
	reportEntryID(ctx, id)
	return nil
}

// publishKey is the stream key a Publish outside a handler writes to: the
// shard of the message's partition-key value when the channel has several
// keys.
func (b *Broker) publishKey(ci *channelInfo, fields []string) (string, error) {
	if len(ci.keys) == 1 {
		return ci.keys[0], nil
	}
	pk := ci.codec.partitionKey
	if pk == "" || !ci.codec.fields {
		return "", fmt.Errorf("the channel is sharded over %d keys but has no partition key (fields encoding) to choose a shard by", len(ci.keys))
	}
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i] == pk && fields[i+1] != "" {
			return ci.keys[b.layout.ShardOf(fields[i+1])], nil
		}
	}
	return "", fmt.Errorf("the channel is sharded over %d keys and the message has no %s to choose a shard by", len(ci.keys), pk)
}

// Subscribe adds one worker to the channel. The first subscription of a
// channel starts reading it; several subscriptions (one per generated
// controller) share its entries.
func (b *Broker) Subscribe(ctx context.Context, channel string) (extensions.BrokerChannelSubscription, error) {
	ci := b.channel(channel)
	b.mu.Lock()
	r := b.readers[channel]
	b.mu.Unlock()
	// A group-less channel starts at the stream's last entry. Read it
	// outside b.mu: a slow Redis must not stall dispatch (Middleware) or
	// Health meanwhile. Only a new reader uses it.
	var tailFrom []string
	if r == nil && ci.group == "" {
		for _, key := range ci.keys {
			from, err := lastEntryID(ctx, b.rdb, key)
			if err != nil {
				return extensions.BrokerChannelSubscription{}, fmt.Errorf("redisstream: subscribe to %s: %w", channel, err)
			}
			tailFrom = append(tailFrom, from)
		}
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return extensions.BrokerChannelSubscription{}, errors.New("redisstream: subscribe on a closed broker")
	}
	r = b.readers[channel]
	if r == nil {
		r = newReader(b, ci)
		for i, from := range tailFrom {
			r.shards[i].tailFrom = from
		}
		b.readers[channel] = r
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			r.run()
		}()
	}
	b.mu.Unlock()

	// Messages: capacity 1, since an entry is only sent to a worker that is
	// idle, so the send never blocks the dispatcher. Cancel: unbuffered.
	// Cancel sends on it, then waits to receive on it (the close that says
	// the cleanup is done); with a buffer it could receive its own signal
	// back before WaitForCancellationAsync took it, return, and leave the
	// worker subscribed for good.
	sub := extensions.NewBrokerChannelSubscription(make(chan extensions.AcknowledgeableBrokerMessage, 1), make(chan any))
	w := r.addWorker(sub)
	sub.WaitForCancellationAsync(func() { r.removeWorker(w) })
	return sub, nil
}

// Close stops reading every channel, lets in-flight handlers finish and
// their acknowledgements be written until ctx is done, and leaves unfinished
// entries pending for other consumers. It does not close the Redis client.
func (b *Broker) Close(ctx context.Context) error {
	b.mu.Lock()
	b.closed = true
	readers := make([]*reader, 0, len(b.readers))
	for _, r := range b.readers {
		readers = append(readers, r)
	}
	b.mu.Unlock()
	for _, r := range readers {
		r.shutdown(ctx)
	}
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("redisstream: close: %w", ctx.Err())
	}
}

// Health is nil while every subscribed channel reads without error and no
// entry's commit is being refused by Redis, else the first problem found
// (for a readiness probe).
func (b *Broker) Health() error {
	b.mu.Lock()
	for addr, r := range b.readers {
		if err := r.health(); err != nil {
			b.mu.Unlock()
			return fmt.Errorf("%s: %w", addr, err)
		}
	}
	b.mu.Unlock()
	return b.commitFails.err()
}

// Middleware must be given to every generated controller that subscribes
// through this broker (WithMiddlewares). It carries the received entry in
// the context, so SendAs… calls made by the handler join the entry's
// acknowledgement, and it keeps the handler's error for the dead letter.
// A handler's panic becomes a *PanicError (with its stack): the entry is
// retried and dead-lettered like any failure, and the process lives on.
func (b *Broker) Middleware() extensions.Middleware {
	return func(ctx context.Context, msg *extensions.BrokerMessage, next extensions.NextMiddleware) error {
		if dir, _ := ctx.Value(extensions.ContextKeyIsDirection).(string); dir != "reception" {
			return next(ctx)
		}
		p := unsafe.SliceData(msg.Payload)
		var d *Delivery
		b.mu.Lock()
		for _, r := range b.readers {
			if d = r.lookup(p); d != nil {
				break
			}
		}
		b.mu.Unlock()
		if d == nil {
			return callRecovering(ctx, next)
		}
		ctx = context.WithValue(ctx, deliveryKey{}, d)
		d.handing(ctx)
		err := callRecovering(ctx, next)
		if err != nil {
			d.setErr(err)
		}
		return err
	}
}
