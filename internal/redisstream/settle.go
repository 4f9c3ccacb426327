package redisstream

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Settling a handled entry: Ack queues it for the commit loop (commit.go),
// Nak retries it after a backoff or dead-letters it (deadletter.go), and a
// group-less entry is simply forgotten.

// grouplessDone ends an entry read without a consumer group: there is
// nothing to acknowledge, and a handler's publications are written at once.
func (r *reader) grouplessDone(d *Delivery, pubs []publication, fromWorker bool) {
	for _, p := range pubs {
		a := &redis.XAddArgs{Stream: p.channel.keyIn(d.Shard()), Values: p.fields}
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
	if fromWorker {
		r.workerDoneLocked(d)
	}
	r.q.finish(d)
	r.dispatchLocked()
	r.mu.Unlock()
	r.signal()
}

// ack is the generated controller's Ack: the handler returned nil. If the
// handler asked for a continuation, that runs first (continue.go).
func (r *reader) ack(d *Delivery) {
	if hctx, fn := d.takeContinuation(); fn != nil {
		r.continueEntry(d, hctx, fn)
		return
	}
	r.settleAck(d, true)
}

// nak is the generated controller's Nak: the handler failed.
func (r *reader) nak(d *Delivery) {
	d.takeContinuation() // never run
	r.settleNak(d, true)
}

// settleAck commits d. fromWorker: a worker handled d until now and is
// freed (false after a continuation, which freed it already).
func (r *reader) settleAck(d *Delivery, fromWorker bool) {
	if r.ci.group == "" {
		d.mu.Lock()
		pubs := d.pubs
		d.mu.Unlock()
		r.grouplessDone(d, pubs, fromWorker)
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
	if fromWorker {
		r.workerDoneLocked(d)
	}
	r.dispatchLocked()
	// Handing out an entry may have left fewer ready than there are
	// workers: the reader may fetch more before this one is committed.
	r.unlockWakingReader()
	r.enqueueCommit(commitReq{d: d, pubs: pubs})
}

// settleNak retries d after its backoff or dead-letters it; fromWorker as
// for settleAck.
func (r *reader) settleNak(d *Delivery, fromWorker bool) {
	if r.ci.group == "" {
		r.grouplessDone(d, nil, fromWorker)
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
	redisAway := dead == "" && isConnErr(lastErr) && !r.redisAnswers(d)
	r.mu.Lock()
	if fromWorker {
		r.workerDoneLocked(d)
	}
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
	released := r.q.held[d.ref()] != d
	r.mu.Unlock()
	if released {
		// Let go meanwhile (its workers left): it stays pending for any
		// consumer, and claiming it here would charge a delivery for
		// nothing.
		return
	}
	if draining {
		r.finish(d)
		return
	}
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	// A plain XCLAIM counts the delivery in Redis, so a crash now leaves the
	// right count for whoever claims the entry next.
	ids, err := r.b.rdb.XClaim(ctx, &redis.XClaimArgs{
		Stream: d.sh.key, Group: r.ci.group, Consumer: r.b.opts.Consumer, Messages: []string{d.id},
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
		// Acknowledged or deleted meanwhile: nothing left to do; unless
		// the group was recreated past it and it is owed an answer, then
		// it is retried here (groupgone.go).
		owed, err := r.orphaned(d.sh, d.id)
		if err != nil {
			r.logs.warn("claim for redelivery", err)
			time.AfterFunc(backoff(r.b.opts.ReconnectMin, min(r.b.opts.ReconnectMax, time.Second), attempt+1), func() { r.redeliver(d, attempt+1) })
			return
		}
		if !owed {
			r.finish(d)
			return
		}
	}
	r.b.opts.Observer.Redelivered(r.ci.address)
	r.mu.Lock()
	if r.q.held[d.ref()] != d {
		r.mu.Unlock() // let go while the claim was on the wire
		return
	}
	d.count++
	// At the front if d still holds its key; otherwise an older entry of
	// the key took it meanwhile and d waits in the key's queue.
	r.q.retried(d)
	r.dispatchLocked()
	r.mu.Unlock()
}
