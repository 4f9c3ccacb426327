package redisstream

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/redisclient"
)

// Outage mode. When the reader sees that Redis is unreachable or out of
// memory — a read or a commit fails on the connection or with OOM, or a
// handler fails with such an error — it stops handing entries to workers,
// and a probe checks Redis with the reconnect backoff: the one server, or
// on a cluster the master of each key the reader owns (nodes.go). Entries
// whose handler failed with a connection error while Redis does not answer
// go back to the front of the queue without being charged a delivery (a
// connection error while Redis answers is the runtime's, and is retried
// and charged as usual; on a cluster every master must answer for that,
// since a handler's keys may live on any of them). When the probe gets an
// answer, dispatch resumes at once and the read loop stops waiting.
// The probe also checks that Redis accepts writes, so an OOM outage ends
// when memory is freed, not at the first PING.
// So an outage costs no delivery, logs a bounded number of lines, and jobs
// go on within one probe interval of Redis coming back.

// isConnErr reports whether err means "Redis could not be reached", as
// opposed to an answer of Redis or a failure of the runtime. Redis out of
// memory (OOM: it refuses writes) counts as unreachable: it is Redis's
// problem, not the job's, and passes when memory is freed.
func isConnErr(err error) bool {
	return isOOM(err) || redisclient.IsUnreachable(err)
}

// isOOM reports whether Redis refused a write for lack of memory
// (maxmemory reached with a no-eviction policy), however wrapped.
func isOOM(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "OOM ")
}

// writeProbe is a script that writes nothing but is declared as one that
// may (a shebang without no-writes), so Redis refuses it with OOM exactly
// when it refuses writes.
const writeProbe = "#!lua\nreturn 1"

// usable checks that the Redis nodes this reader needs answer and accept
// writes (nodes.go): the one Redis, or on a cluster the masters of the
// reader's keys.
func (r *reader) usable(ctx context.Context) error {
	return r.b.checkKeys(ctx, r.keys())
}

// redisAnswers is true when Redis answers at once and accepts writes, and
// has all along since d was handed out: the reader is not in an outage and
// none began meanwhile. (A handler's connection error decided only by a
// ping after Redis came back would be charged to the job.)
func (r *reader) redisAnswers(d *Delivery) bool {
	r.mu.Lock()
	out := r.outage || r.outages != d.outages
	r.mu.Unlock()
	if out {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	return r.usable(ctx) == nil && r.b.mastersAnswer(ctx) == nil
}

// enterOutageLocked pauses dispatch and starts the probe (once).
func (r *reader) enterOutageLocked() {
	if r.outage || r.draining {
		return
	}
	r.outage = true
	r.outages++
	go r.probe()
}

func (r *reader) enterOutage() {
	r.mu.Lock()
	r.enterOutageLocked()
	r.mu.Unlock()
}

// probe pings Redis until it answers, then ends the outage.
func (r *reader) probe() {
	for attempt := 1; ; attempt++ {
		// Pings are cheap; probing often gets work going soon after Redis
		// is back.
		r.sleep(backoff(r.b.opts.ReconnectMin, min(r.b.opts.ReconnectMax, 500*time.Millisecond), attempt))
		if r.ctx.Err() != nil {
			return
		}
		ctx, cancel := context.WithTimeout(r.ctx, time.Second)
		err := r.usable(ctx)
		cancel()
		if err == nil {
			r.mu.Lock()
			r.outage = false
			for _, sh := range r.shards {
				sh.readErr = nil // Redis answers: ready, even before the next read
			}
			r.dispatchLocked()
			r.mu.Unlock()
			// Held entries went idle during the outage: refresh them before
			// any consumer's claim takes them as abandoned.
			_ = r.touchHeld() // a failure is logged; the maintenance loop tries again
			r.back.signal()
			r.b.log.Info("redis answers again; resuming", "stream", r.ci.address)
			return
		}
	}
}

// serverError is an error reply of Redis found inside a script's reply; it
// satisfies redis.Error like the client's own.
type serverError string

func (e serverError) Error() string { return string(e) }
func (serverError) RedisError()     {}
