package redisstream

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Outage mode. When the reader sees that Redis is unreachable — a read or a
// commit fails on the connection, or a handler fails with a connection
// error — it stops handing entries to workers, and a probe pings Redis with
// the reconnect backoff. Entries whose handler failed with a connection
// error while Redis does not answer go back to the front of the queue
// without being charged a delivery (a connection error while Redis answers
// is the runtime's, and is retried and charged as usual). When the probe
// gets an answer, dispatch resumes at once and the read loop stops waiting.
// So an outage costs no delivery, logs a bounded number of lines, and jobs
// go on within one probe interval of Redis coming back.

// isConnErr reports whether err means "Redis could not be reached", as
// opposed to an answer of Redis or a failure of the runtime.
func isConnErr(err error) bool {
	if err == nil {
		return false
	}
	var op *net.OpError
	switch {
	case errors.As(err, &op),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, redis.ErrClosed):
		return true
	}
	msg := err.Error()
	// A restarting server answers LOADING until its data set is back.
	return strings.Contains(msg, "LOADING ") || strings.Contains(msg, "connection pool timeout")
}

// redisAnswers is true when the reader is not in an outage and Redis
// answers a PING at once.
func (r *reader) redisAnswers() bool {
	r.mu.Lock()
	out := r.outage
	r.mu.Unlock()
	if out {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	return r.b.rdb.Ping(ctx).Err() == nil
}

// enterOutageLocked pauses dispatch and starts the probe (once).
func (r *reader) enterOutageLocked() {
	if r.outage || r.draining {
		return
	}
	r.outage = true
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
		err := r.b.rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			r.mu.Lock()
			r.outage = false
			r.readErr = nil // Redis answers: ready, even before the next read
			r.dispatchLocked()
			r.mu.Unlock()
			// Held entries went idle during the outage: refresh them before
			// any consumer's claim takes them as abandoned.
			r.touchHeld()
			select {
			case r.back <- struct{}{}:
			default:
			}
			r.b.log.Info("redis answers again; resuming", "stream", r.ci.address)
			return
		}
	}
}
