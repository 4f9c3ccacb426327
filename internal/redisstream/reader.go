package redisstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lerenn/asyncapi-codegen/pkg/extensions"
	"github.com/redis/go-redis/v9"
)

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
	b  *Broker
	ci *channelInfo

	ctx        context.Context // reading lifetime: ends at shutdown
	cancel     context.CancelFunc
	wake       chan struct{} // capacity freed or workers added
	back       chan struct{} // an outage ended
	commit     chan commitReq
	commitStop chan struct{} // closed by shutdown: commit what is queued, then stop
	commitDone chan struct{} // closed when the commit loop has stopped
	done       chan struct{} // closed when run returns

	mu       sync.Mutex
	workers  []*worker
	q        keyQueue
	inflight int    // handed to a worker, not yet acked/naked
	lastID   string // last entry id read as new
	readErr  error
	draining bool
	outage   bool   // Redis unreachable: dispatch paused (outage.go)
	tailFrom string // group-less channels: the last entry id when subscribed

	logs rateLog
}

func newReader(b *Broker, ci *channelInfo) *reader {
	ctx, cancel := context.WithCancel(context.Background())
	return &reader{
		b:          b,
		ci:         ci,
		ctx:        ctx,
		cancel:     cancel,
		wake:       make(chan struct{}, 1),
		back:       make(chan struct{}, 1),
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
	if r.ci.group == "" {
		r.tailLoop()
	} else {
		r.readLoop()
	}
	wg.Wait()
}

func (r *reader) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
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
func (r *reader) removeWorker(w *worker) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.q.workerRemoved(w)
	r.workers = remove(r.workers, w)
	if len(r.workers) == 0 {
		// Nobody left to handle queued entries: let them go, still pending,
		// so another consumer can claim them.
		r.q.releaseQueued()
	}
}

// lookup finds the delivery a received message was made from: by entry id,
// and by the identity of its headers map, since two streams can hold the
// same id.
func (r *reader) lookup(id []byte, hdr map[string][]byte) *Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.q.held[string(id)]
	if d == nil || reflect.ValueOf(d.hdr).UnsafePointer() != reflect.ValueOf(hdr).UnsafePointer() {
		return nil
	}
	return d
}

func (r *reader) health() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.readErr != nil {
		return r.readErr
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
	r.inflight++
	w.sub.TransmitReceivedMessage(d.message())
}

// workerDoneLocked frees the worker that handled d.
func (r *reader) workerDoneLocked(d *Delivery) {
	r.inflight--
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

// grouplessDone ends an entry read without a consumer group: there is
// nothing to acknowledge, and a handler's publications are written at once.
func (r *reader) grouplessDone(d *Delivery, pubs []publication) {
	for _, p := range pubs {
		a := &redis.XAddArgs{Stream: p.channel.address, Values: p.fields}
		if p.channel.maxLen > 0 {
			a.MaxLen, a.Approx = p.channel.maxLen, true
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := r.b.rdb.XAdd(ctx, a).Err(); err != nil {
			r.logs.warn("publish from a group-less subscription", err)
		}
		cancel()
	}
	r.mu.Lock()
	r.workerDoneLocked(d)
	r.q.finish(d)
	r.dispatchLocked()
	r.mu.Unlock()
	r.signal()
}

func (r *reader) ack(d *Delivery) {
	if r.ci.group == "" {
		d.mu.Lock()
		pubs := d.pubs
		d.mu.Unlock()
		r.grouplessDone(d, pubs)
		return
	}
	d.mu.Lock()
	pubs := d.pubs
	d.pubs = nil
	dead, deadErr := d.deadReason, d.deadErr
	d.mu.Unlock()
	if dead != "" {
		pubs = append(pubs, r.deadLetter(d, dead, deadErr))
	}
	r.mu.Lock()
	r.workerDoneLocked(d)
	r.dispatchLocked()
	// Handing out an entry may have left fewer ready than there are
	// workers: the reader may fetch more before this one is committed.
	r.unlockWakingReader()
	r.enqueueCommit(commitReq{d: d, pubs: pubs})
}

func (r *reader) nak(d *Delivery) {
	if r.ci.group == "" {
		r.grouplessDone(d, nil)
		return
	}
	d.mu.Lock()
	d.pubs = nil
	dead, deadErr := d.deadReason, d.deadErr
	lastErr := d.lastErr
	d.mu.Unlock()

	// A connection error of the handler may be Redis going away (or the
	// runtime's daemon being unreachable): ask Redis before charging a
	// delivery.
	redisAway := dead == "" && isConnErr(lastErr) && !r.redisAnswers()
	r.mu.Lock()
	r.workerDoneLocked(d)
	if redisAway && !r.draining {
		// Not the job's fault: no delivery is charged; the entry waits at
		// the front (it holds its key) until Redis answers again.
		r.enterOutageLocked()
		r.q.pushFront(d)
		r.mu.Unlock()
		return
	}
	count := d.count
	draining := r.draining
	r.dispatchLocked()
	r.mu.Unlock()

	if dead == "" && count >= int64(r.b.opts.MaxDeliveries) {
		dead = DeadMaxDeliveries
		deadErr = fmt.Sprintf("delivered %d times", count)
		if lastErr != nil {
			deadErr += "; last error: " + lastErr.Error()
		}
	}
	if dead != "" {
		r.enqueueCommit(commitReq{d: d, pubs: []publication{r.deadLetter(d, dead, deadErr)}})
		return
	}
	if draining {
		// Shutting down: leave it pending for the next start or another consumer.
		r.finish(d)
		return
	}
	wait := r.b.opts.RetryBackoff << min(count-1, 20)
	if wait > r.b.opts.MaxRetryBackoff || wait <= 0 {
		wait = r.b.opts.MaxRetryBackoff
	}
	r.mu.Lock()
	r.q.retry(d)
	r.mu.Unlock()
	time.AfterFunc(wait, func() { r.redeliver(d, 0) })
}

// redeliver claims a Nak'ed entry back (which counts a delivery in Redis) and
// queues it again at the front: it still holds its partition key.
func (r *reader) redeliver(d *Delivery, attempt int) {
	r.mu.Lock()
	draining := r.draining
	r.mu.Unlock()
	if draining {
		r.finish(d)
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	// A plain XCLAIM counts the delivery in Redis, so a crash now leaves the
	// right count for whoever claims the entry next.
	ids, err := r.b.rdb.XClaim(ctx, &redis.XClaimArgs{
		Stream: r.ci.address, Group: r.ci.group, Consumer: r.b.opts.Consumer, Messages: []string{d.id},
	}).Result()
	cancel()
	if err != nil {
		r.logs.warn("claim for redelivery", err)
		// Redis away: try again soon (as reads do), so the job goes on as
		// soon as Redis is back; the entry is still ours and pending.
		time.AfterFunc(backoff(r.b.opts.ReconnectMin, min(r.b.opts.ReconnectMax, time.Second), attempt+1), func() { r.redeliver(d, attempt+1) })
		return
	}
	if len(ids) == 0 {
		// Acknowledged or deleted meanwhile: nothing left to do.
		r.finish(d)
		return
	}
	r.b.opts.Observer.Redelivered(r.ci.address)
	r.mu.Lock()
	d.count++
	// At the front if d still holds its key; otherwise an older entry of
	// the key took it meanwhile and d waits in the key's queue.
	r.q.retried(d)
	r.dispatchLocked()
	r.mu.Unlock()
}

// deadLetter builds the dead-letter entry for d: why, then the original
// fields; an original field named like a dead-letter field is kept as
// "original.<name>".
func (r *reader) deadLetter(d *Delivery, reason, errText string) publication {
	target := r.ci.dead
	if target == nil {
		target = r.b.channel(r.ci.address + ":dead")
	}
	r.mu.Lock()
	count := d.count
	r.mu.Unlock()
	fields := make([]string, 0, 10+2*len(d.values))
	fields = append(fields,
		"dead_reason", reason,
		"dead_error", errText,
		"original_id", d.id,
		"delivery_count", strconv.FormatInt(count, 10),
		"dead_at_ms", strconv.FormatInt(time.Now().UnixMilli(), 10),
	)
	for name, v := range d.values {
		s, _ := v.(string)
		switch name {
		case "dead_reason", "dead_error", "original_id", "delivery_count", "dead_at_ms":
			name = "original." + name
		}
		fields = append(fields, name, s)
	}
	r.b.opts.Observer.DeadLettered(r.ci.address, reason)
	return publication{channel: target, fields: fields}
}

func (r *reader) setReadErr(err error) {
	r.mu.Lock()
	r.readErr = err
	r.mu.Unlock()
	if err != nil {
		r.b.opts.Observer.ReadError(r.ci.address, err)
	}
}

// readCountLocked is how many entries a read may fetch now, 0 for none
// yet. While fewer entries are ready than there are workers, any free room
// is read at once, so a quiet service answers without delay; otherwise a
// read waits for ReadCount of room, so under load each round trip fetches a
// full batch rather than one entry per finished job.
func (r *reader) readCountLocked() int {
	free := r.prefetch() - len(r.q.held)
	if free <= 0 || len(r.workers) == 0 {
		return 0
	}
	if free < r.b.opts.ReadCount && len(r.q.ready) >= len(r.workers) {
		return 0
	}
	return min(free, r.b.opts.ReadCount)
}

// waitCapacity blocks until a read may fetch entries; it returns how many,
// or 0 when reading ends.
func (r *reader) waitCapacity() int {
	for {
		r.mu.Lock()
		n := r.readCountLocked()
		r.mu.Unlock()
		if n > 0 {
			return n
		}
		select {
		case <-r.ctx.Done():
			return 0
		case <-r.wake:
		}
	}
}

func (r *reader) readLoop() {
	attempt := 0
	groupReady := false
	for {
		n := r.waitCapacity()
		if n == 0 {
			return
		}
		if !groupReady {
			if err := r.createGroup(); err != nil {
				r.readFailed(err, &attempt)
				continue
			}
			groupReady = true
			// A (re)started process first takes over what dead consumers
			// left long enough ago, then reads new entries.
			r.claimIdle()
		}
		res, err := r.b.rdb.XReadGroup(r.ctx, &redis.XReadGroupArgs{
			Group: r.ci.group, Consumer: r.b.opts.Consumer,
			Streams: []string{r.ci.address, ">"},
			Count:   int64(n), Block: r.b.opts.Block,
		}).Result()
		switch {
		case err == nil || errors.Is(err, redis.Nil):
			attempt = 0
			r.setReadErr(nil)
		case r.ctx.Err() != nil:
			return
		case isNoGroup(err):
			r.logs.warn("consumer group is gone; recreating it", err)
			groupReady = false
			continue
		default:
			r.readFailed(err, &attempt)
			continue
		}
		for _, s := range res {
			r.accept(s.Messages, nil)
		}
	}
}

// lastEntryID is the id of the stream's newest entry, "0-0" when empty, so
// a group-less subscription sees every entry appended after Subscribe
// returns (XREAD with "$" would miss those appended before its first call).
func lastEntryID(ctx context.Context, rdb redis.UniversalClient, stream string) (string, error) {
	msgs, err := rdb.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil {
		return "", err
	}
	if len(msgs) == 0 {
		return "0-0", nil
	}
	return msgs[0].ID, nil
}

// tailLoop reads a channel without a consumer group (a user controller that
// follows results, say): new entries only, Ack and Nak change nothing.
func (r *reader) tailLoop() {
	attempt := 0
	last := r.tailFrom
	for {
		n := r.waitCapacity()
		if n == 0 {
			return
		}
		res, err := r.b.rdb.XRead(r.ctx, &redis.XReadArgs{
			Streams: []string{r.ci.address, last}, Count: int64(n), Block: r.b.opts.Block,
		}).Result()
		switch {
		case err == nil || errors.Is(err, redis.Nil):
			attempt = 0
			r.setReadErr(nil)
		case r.ctx.Err() != nil:
			return
		default:
			r.readFailed(err, &attempt)
			continue
		}
		for _, s := range res {
			if len(s.Messages) > 0 {
				last = s.Messages[len(s.Messages)-1].ID
			}
			r.accept(s.Messages, nil)
		}
	}
}

func (r *reader) readFailed(err error, attempt *int) {
	r.setReadErr(err)
	r.logs.warn("read failed; retrying", err)
	if isConnErr(err) {
		r.enterOutage()
	}
	*attempt++
	t := time.NewTimer(backoff(r.b.opts.ReconnectMin, r.b.opts.ReconnectMax, *attempt))
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.back: // the probe got an answer: read now
		*attempt = 0
	case <-r.ctx.Done():
	}
}

func isNoGroup(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOGROUP")
}

// createGroup creates the consumer group (and the stream) if needed. A group
// created again after it vanished starts after the last entry this process
// read, so nothing is replayed or skipped.
func (r *reader) createGroup() error {
	r.mu.Lock()
	start := r.lastID
	r.mu.Unlock()
	if start == "" {
		start = r.b.opts.StartID
	}
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	err := r.b.rdb.XGroupCreateMkStream(ctx, r.ci.address, r.ci.group, start).Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group %s: %w", r.ci.group, err)
	}
	if err == nil {
		r.b.log.Info("consumer group created", "stream", r.ci.address, "group", r.ci.group, "start_id", start)
	}
	return nil
}

// accept turns read or claimed entries into deliveries. counts gives the
// delivery count of claimed entries (nil for new ones: count 1).
func (r *reader) accept(msgs []redis.XMessage, counts map[string]int64) {
	if len(msgs) == 0 {
		return
	}
	r.b.opts.Observer.Received(r.ci.address, len(msgs))
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.draining {
		// Read just as shutdown began: leave them pending for others.
		return
	}
	for _, m := range msgs {
		if counts == nil {
			r.lastID = m.ID
		}
		if _, dup := r.q.held[m.ID]; dup {
			continue
		}
		d := &Delivery{r: r, id: m.ID, values: m.Values, count: 1}
		d.dec = r.ci.codec.decode(m.Values)
		d.key = d.dec.key
		if c, ok := counts[m.ID]; ok {
			d.count = c
			if c > int64(r.b.opts.MaxDeliveries) {
				d.deadReason = DeadMaxDeliveries
				d.deadErr = fmt.Sprintf("delivered %d times without an acknowledgement", c)
			}
		}
		if d.dec.err != nil && d.deadReason == "" {
			d.deadReason = DeadUndecodable
			d.deadErr = d.dec.err.Error()
		}
		r.q.add(d)
	}
	r.dispatchLocked()
}

// maintainLoop keeps held entries fresh, claims entries other consumers left
// pending too long, and removes consumers that are gone.
func (r *reader) maintainLoop() {
	if r.ci.group == "" {
		return
	}
	tick := time.NewTicker(r.b.opts.ClaimInterval)
	defer tick.Stop()
	var lastCleanup time.Time
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
		}
		r.touchHeld()
		r.claimIdle()
		if ci := r.b.opts.ConsumerIdle; ci > 0 && time.Since(lastCleanup) > ci/4 {
			r.cleanupConsumers()
			lastCleanup = time.Now()
		}
	}
}

// touchHeld resets the idle time of every entry the process holds, so live
// entries are never claimed by others (XCLAIM … JUSTID counts no delivery).
func (r *reader) touchHeld() {
	r.mu.Lock()
	ids := make([]string, 0, len(r.q.held))
	for id := range r.q.held {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		err := r.b.rdb.XClaimJustID(ctx, &redis.XClaimArgs{
			Stream: r.ci.address, Group: r.ci.group, Consumer: r.b.opts.Consumer, Messages: chunk,
		}).Err()
		cancel()
		if err != nil {
			r.logs.warn("keep held entries", err)
			return
		}
	}
}

// claimIdle takes over entries pending with any consumer for longer than
// ClaimIdle. Claims may fill the process up to twice the prefetch: entries
// a dead consumer left are older than any new one, and the read loop, which
// stops at the prefetch, then waits for them instead of the other way round.
func (r *reader) claimIdle() {
	start := "0-0"
	for {
		r.mu.Lock()
		free := 2*r.prefetch() - len(r.q.held)
		hasWorkers := len(r.workers) > 0 && !r.draining
		r.mu.Unlock()
		if free <= 0 || !hasWorkers {
			return
		}
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		msgs, next, err := r.b.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
			Stream: r.ci.address, Group: r.ci.group, Consumer: r.b.opts.Consumer,
			MinIdle: r.b.opts.ClaimIdle, Start: start, Count: int64(min(free, r.b.opts.ReadCount)),
		}).Result()
		cancel()
		if err != nil {
			if r.ctx.Err() == nil {
				r.logs.warn("claim idle entries", err)
			}
			return
		}
		if len(msgs) > 0 {
			counts, err := r.deliveryCounts(msgs)
			if err != nil {
				r.logs.warn("read delivery counts", err)
				return
			}
			for range msgs {
				r.b.opts.Observer.Redelivered(r.ci.address)
			}
			r.b.log.Info("claimed idle entries", "stream", r.ci.address, "count", len(msgs))
			r.accept(msgs, counts)
		}
		if next == "0-0" || next == "" || len(msgs) == 0 {
			return
		}
		start = next
	}
}

func (r *reader) deliveryCounts(msgs []redis.XMessage) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	pend, err := r.b.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: r.ci.address, Group: r.ci.group, Consumer: r.b.opts.Consumer,
		Start: msgs[0].ID, End: msgs[len(msgs)-1].ID, Count: int64(len(msgs)) + 1024,
	}).Result()
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int64, len(pend))
	for _, p := range pend {
		counts[p.ID] = p.RetryCount
	}
	for _, m := range msgs {
		if _, ok := counts[m.ID]; !ok {
			counts[m.ID] = 1
		}
	}
	return counts, nil
}

func (r *reader) cleanupConsumers() {
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	cs, err := r.b.rdb.XInfoConsumers(ctx, r.ci.address, r.ci.group).Result()
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.Name == r.b.opts.Consumer || c.Pending > 0 || c.Idle < r.b.opts.ConsumerIdle {
			continue
		}
		if err := r.b.rdb.XGroupDelConsumer(ctx, r.ci.address, r.ci.group, c.Name).Err(); err == nil {
			r.b.log.Info("removed idle consumer", "stream", r.ci.address, "consumer_removed", c.Name, "idle", c.Idle.String())
		}
	}
}

// shutdown stops reading and claiming, drops queued entries (they stay
// pending), and waits until in-flight entries are acknowledged and committed
// or ctx ends.
func (r *reader) shutdown(ctx context.Context) {
	r.mu.Lock()
	if r.draining {
		r.mu.Unlock()
		<-r.commitDone
		return
	}
	r.draining = true
	r.q.releaseQueued()
	r.mu.Unlock()
	r.cancel()
	r.signal()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		r.mu.Lock()
		left := len(r.q.held)
		r.mu.Unlock()
		if left == 0 {
			break
		}
		select {
		case <-ctx.Done():
			r.logs.log.Warn("close deadline reached; unfinished entries stay pending", "entries", left)
			close(r.commitStop)
			return
		case <-tick.C:
		}
	}
	close(r.commitStop)
}

// rateLog logs one line per interval for a repeated problem and counts the
// rest, so an outage does not flood the log.
type rateLog struct {
	log        *slog.Logger
	every      time.Duration
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

func (l *rateLog) warn(msg string, err error) {
	l.mu.Lock()
	now := time.Now()
	if now.Sub(l.last) < l.every {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	l.log.Warn(msg, "err", err.Error(), "suppressed", n)
}
