package redisstream

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The read loop: XREADGROUP for a channel with a consumer group (creating
// the group, and again after NOGROUP), XREAD from the tail for a group-less
// one. It reads only while there is room (readCountLocked) and ends with
// r.ctx.

func (r *reader) setReadErr(err error) {
	r.mu.Lock()
	r.readErr = err
	r.mu.Unlock()
	if err != nil {
		r.b.opts.Observer.ReadError(r.ci.address, err)
	}
}

// prefetchedLocked is how many held entries count against the prefetch:
// all but those in a continuation, which MaxContinuing bounds instead.
func (r *reader) prefetchedLocked() int {
	return len(r.q.held) - r.continuing
}

// readCountLocked is how many entries a read may fetch now, 0 for none
// yet. While fewer entries are ready than there are workers, any free room
// is read at once, so a quiet service answers without delay; otherwise a
// read waits for ReadCount of room, so under load each round trip fetches a
// full batch rather than one entry per finished job.
func (r *reader) readCountLocked() int {
	free := r.prefetch() - r.prefetchedLocked()
	if free <= 0 || len(r.workers) == 0 {
		return 0
	}
	if free < r.b.opts.ReadCount && len(r.q.ready) >= len(r.workers) {
		return 0
	}
	return r.byteCountLocked(min(free, r.b.opts.ReadCount), r.b.opts.MaxBytesInHand)
}

// waitCapacity blocks until a read may fetch entries; it returns how many,
// or 0 when reading ends.
func (r *reader) waitCapacity() int {
	for {
		// Reading ends with r.ctx even while there is room: a loop whose
		// call fails at once on the cancelled context would spin.
		if r.ctx.Err() != nil {
			return 0
		}
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
	var seen int64 // the epoch when the group was last found gone
	for {
		n := r.waitCapacity()
		if n == 0 {
			return
		}
		if !groupReady {
			if err := r.createGroup(seen); err != nil {
				r.readFailed(err, &attempt)
				continue
			}
			groupReady = true
			// A (re)started process first takes over what dead consumers
			// left long enough ago, then reads new entries.
			r.claimIdle()
		}
		epoch := r.epochNow()
		res, dups, err := readGroupRaw(r.ctx, r.b.rdb, &redis.XReadGroupArgs{
			Group: r.ci.group, Consumer: r.b.opts.Consumer,
			Streams: []string{r.ci.address, ">"},
			Count:   int64(n), Block: blockFor(r.b.rdb, r.b.opts.Block),
		})
		switch {
		case err == nil || errors.Is(err, redis.Nil):
			attempt = 0
			r.setReadErr(nil)
		case r.ctx.Err() != nil:
			return
		case isNoGroup(err):
			r.logs.warn("consumer group is gone; recreating it", err)
			groupReady, seen = false, epoch
			continue
		default:
			r.readFailed(err, &attempt)
			continue
		}
		for _, s := range res {
			r.accept(s.Messages, nil, dups)
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
			r.accept(s.Messages, nil, nil)
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
// created again after it vanished starts before the oldest entry this
// process holds (groupgone.go). seen is the epoch known before the call
// that found the group gone (NOGROUP).
func (r *reader) createGroup(seen int64) error {
	r.mu.Lock()
	start := r.recreateFromLocked()
	holding := len(r.q.held) > 0
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	created, epoch, err := r.makeGroup(ctx, start)
	if err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE") {
		// Say what the key is: the operator has to fix it.
		if !strings.Contains(err.Error(), " holds a ") {
			t, _ := r.b.rdb.Type(ctx, r.ci.address).Result()
			err = fmt.Errorf("key %s holds a %s, not a stream: %w", r.ci.address, t, err)
		}
		return fmt.Errorf("create consumer group %s: %w", r.ci.group, err)
	}
	if err != nil {
		return fmt.Errorf("create consumer group %s: %w", r.ci.group, err)
	}
	r.mu.Lock()
	r.epoch = epoch
	r.mu.Unlock()
	if created {
		r.b.log.Info("consumer group created", "stream", r.ci.address, "group", r.ci.group, "start_id", start, "epoch", epoch)
		return nil
	}
	if holding && (epoch == seen || epoch < 0) {
		// Recreated, but not by this broker (its epoch did not move), or
		// unknown: move it back if it starts after entries this process
		// holds.
		return r.groupNotAfter(ctx, start)
	}
	return nil
}

// accept turns read or claimed entries into deliveries. counts gives the
// delivery count of claimed entries (nil for new ones: count 1); dups the
// fields entries name more than once (rawread.go).
func (r *reader) accept(msgs []redis.XMessage, counts map[string]int64, dups entryDups) {
	if len(msgs) == 0 {
		return
	}
	r.b.opts.Observer.Received(r.ci.address, len(msgs))
	r.noteReadSizes(msgs)
	var ackOnly []*Delivery
	defer func() {
		for _, d := range ackOnly {
			r.enqueueCommit(commitReq{d: d})
		}
	}()
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
		if r.answered.has(m.ID) {
			// Read again after the group was recreated; answered already.
			ackOnly = append(ackOnly, r.ackOnlyLocked(m))
			continue
		}
		d := &Delivery{r: r, id: m.ID, values: m.Values, count: 1}
		d.dec = r.ci.codec.decodeDups(m.Values, dups[m.ID])
		d.key = d.dec.key
		d.size = cutHeld(m.Values, r.b.opts.MaxFieldSize)
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
