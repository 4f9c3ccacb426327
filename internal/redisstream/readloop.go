package redisstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The read loop: XREADGROUP for a channel with a consumer group (creating
// the group, and again after NOGROUP), XREAD from the tail for a group-less
// one. It reads only while there is room (readCountLocked) and ends with
// r.ctx.

// setReadErr records the outcome of a read of shs.
func (r *reader) setReadErr(shs []*shard, err error) {
	r.mu.Lock()
	for _, sh := range shs {
		sh.readErr = err
	}
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

// readCountLocked is how many entries a read of one key may fetch now (see
// readCountForLocked).
func (r *reader) readCountLocked() int {
	return r.readCountForLocked(1)
}

// readCountForLocked is how many entries per key a read of keys stream
// keys may fetch now, 0 for none yet. While fewer entries are ready than
// there are workers, any free room is read at once, so a quiet service
// answers without delay; otherwise a read waits for a full batch of room,
// so under load each round trip fetches a full batch rather than one entry
// per finished job.
//
// With S shards a key's batch is ReadCount/S (at least one): S loops
// reading at once (on a Cluster) then ask for ReadCount together, and a
// read of all S keys at once asks for ReadCount in all. Entries asked for
// by reads on the wire count against the prefetch and the bytes in hand
// (reserved), so several loops never read past them together.
func (r *reader) readCountForLocked(keys int) int {
	perKey := r.b.opts.ReadCount
	if s := r.shardCount(); s > 1 {
		perKey = max(1, perKey/s)
	}
	want := perKey * keys
	free := r.prefetch() - r.prefetchedLocked() - r.reserved
	if free <= 0 || len(r.workers) == 0 {
		return 0
	}
	if free < want && len(r.q.ready) >= len(r.workers) {
		return 0
	}
	n := r.byteCountLocked(min(free, want), r.b.opts.MaxBytesInHand-int64(r.reserved)*r.entryEst)
	if n <= 0 {
		return 0
	}
	return max(1, n/keys)
}

// waitCapacity blocks until a read of keys stream keys may fetch entries
// and reserves them; it returns how many per key, or 0 when reading ends.
// The caller gives the reservation back (release) once the read's entries
// are held.
func (r *reader) waitCapacity(keys int) int {
	for {
		// Reading ends with r.ctx even while there is room: a loop whose
		// call fails at once on the cancelled context would spin.
		if r.ctx.Err() != nil {
			return 0
		}
		woken := r.wake.wait()
		r.mu.Lock()
		n := r.readCountForLocked(keys)
		r.reserved += n * keys
		r.mu.Unlock()
		if n > 0 {
			return n
		}
		select {
		case <-r.ctx.Done():
			return 0
		case <-woken:
		}
	}
}

// release gives back a read's reservation.
func (r *reader) release(n int) {
	if n == 0 {
		return
	}
	r.mu.Lock()
	r.reserved -= n
	r.mu.Unlock()
	if len(r.shards) > 1 {
		r.signal() // other loops may read now
	}
}

// readLoop reads shs through the consumer group: one XREADGROUP names them
// all (shard.go). A shard whose group cannot be created (its key of
// another type, say) is left out of the read and tried again after a
// backoff; the others are read meanwhile.
func (r *reader) readLoop(shs []*shard) {
	attempt := 0
	groupReady := make([]bool, len(shs))
	seen := make([]int64, len(shs)) // the epoch when the group was last found gone
	retryAt := make([]time.Time, len(shs))
	fails := make([]int, len(shs))
	byKey := make(map[string]*shard, len(shs))
	for _, sh := range shs {
		byKey[sh.key] = sh
	}
	var reading []*shard
	var epochs []int64
	for {
		n := r.waitCapacity(len(shs))
		if n == 0 {
			return
		}
		reserved := n * len(shs)
		reading, epochs = reading[:0], epochs[:0]
		type failure struct {
			sh  *shard
			err error
		}
		var failed []failure
		var lastErr error
		for i, sh := range shs {
			if !groupReady[i] && !time.Now().Before(retryAt[i]) {
				if err := r.createGroup(sh, seen[i]); err != nil {
					fails[i]++
					retryAt[i] = time.Now().Add(backoff(r.b.opts.ReconnectMin, r.b.opts.ReconnectMax, fails[i]))
					failed, lastErr = append(failed, failure{sh, err}), err
				} else {
					groupReady[i], fails[i] = true, 0
					// A (re)started process first takes over what dead
					// consumers left long enough ago, then reads new
					// entries.
					r.claimIdle(sh, r.claimUntil())
				}
			}
			if groupReady[i] {
				reading = append(reading, sh)
				epochs = append(epochs, r.epochNow(sh))
			}
		}
		if len(reading) == 0 {
			r.release(reserved)
			if lastErr == nil {
				lastErr = errors.New("no consumer group ready")
			}
			clear(retryAt) // readFailed backs off: then try them all
			r.readFailed(shs, lastErr, &attempt)
			continue
		}
		for _, f := range failed {
			r.setReadErr([]*shard{f.sh}, f.err)
			r.logs.warn("consumer group "+r.ci.group+" on "+f.sh.key+" not created; reading the other shards", f.err)
		}
		streams := make([]string, 0, 2*len(reading))
		for _, sh := range reading {
			streams = append(streams, sh.key)
		}
		for range reading {
			streams = append(streams, ">")
		}
		res, err := readGroupRawEach(r.ctx, r.b.rdb, &redis.XReadGroupArgs{
			Group: r.ci.group, Consumer: r.b.opts.Consumer,
			Streams: streams,
			Count:   int64(n), Block: blockFor(r.b.rdb, r.b.opts.Block),
		})
		switch {
		case err == nil || errors.Is(err, redis.Nil):
			attempt = 0
			r.setReadErr(reading, nil)
		case r.ctx.Err() != nil:
			r.release(reserved)
			return
		case isNoGroup(err):
			r.release(reserved)
			r.logs.warn("consumer group is gone; recreating it", err)
			// The error names the key; recreate the group there only
			// (creating it again where it is could move it back).
			named := false
			for j, sh := range reading {
				if len(reading) == 1 || strings.Contains(err.Error(), "'"+sh.key+"'") {
					i := slices.Index(shs, sh)
					groupReady[i], seen[i], named = false, epochs[j], true
				}
			}
			if !named {
				for j, sh := range reading {
					i := slices.Index(shs, sh)
					groupReady[i], seen[i] = false, epochs[j]
				}
			}
			continue
		default:
			r.release(reserved)
			r.readFailed(shs, err, &attempt)
			continue
		}
		for _, s := range res {
			if sh := byKey[s.Stream]; sh != nil {
				r.accept(sh, s.Messages, nil, s.dups)
			}
		}
		r.release(reserved)
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
func (r *reader) tailLoop(shs []*shard) {
	attempt := 0
	byKey := make(map[string]*shard, len(shs))
	streams := make([]string, 2*len(shs))
	for i, sh := range shs {
		byKey[sh.key] = sh
		streams[i] = sh.key
		r.mu.Lock()
		streams[len(shs)+i] = sh.tailFrom
		r.mu.Unlock()
	}
	for {
		n := r.waitCapacity(len(shs))
		if n == 0 {
			return
		}
		reserved := n * len(shs)
		res, err := r.b.rdb.XRead(r.ctx, &redis.XReadArgs{
			Streams: streams, Count: int64(n), Block: r.b.opts.Block,
		}).Result()
		switch {
		case err == nil || errors.Is(err, redis.Nil):
			attempt = 0
			r.setReadErr(shs, nil)
		case r.ctx.Err() != nil:
			r.release(reserved)
			return
		default:
			r.release(reserved)
			r.readFailed(shs, err, &attempt)
			continue
		}
		for _, s := range res {
			sh := byKey[s.Stream]
			if sh == nil {
				continue
			}
			if len(s.Messages) > 0 {
				streams[len(shs)+slices.Index(shs, sh)] = s.Messages[len(s.Messages)-1].ID
			}
			r.accept(sh, s.Messages, nil, nil)
		}
		r.release(reserved)
	}
}

func (r *reader) readFailed(shs []*shard, err error, attempt *int) {
	back := r.back.wait() // before the outage (and its probe) begins
	r.setReadErr(shs, err)
	r.logs.warn("read failed; retrying", err)
	if isConnErr(err) {
		r.enterOutage()
	}
	*attempt++
	t := time.NewTimer(backoff(r.b.opts.ReconnectMin, r.b.opts.ReconnectMax, *attempt))
	defer t.Stop()
	select {
	case <-t.C:
	case <-back: // the probe got an answer: read now
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
func (r *reader) createGroup(sh *shard, seen int64) error {
	r.mu.Lock()
	start := r.recreateFromLocked(sh)
	holding := sh.held > 0
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	created, epoch, err := r.makeGroup(ctx, sh, start)
	if err != nil && strings.HasPrefix(err.Error(), "WRONGTYPE") {
		// Say what the key is: the operator has to fix it.
		if !strings.Contains(err.Error(), " holds a ") {
			t, _ := r.b.rdb.Type(ctx, sh.key).Result()
			err = fmt.Errorf("key %s holds a %s, not a stream: %w", sh.key, t, err)
		}
		return fmt.Errorf("create consumer group %s: %w", r.ci.group, err)
	}
	if err != nil {
		return fmt.Errorf("create consumer group %s: %w", r.ci.group, err)
	}
	r.mu.Lock()
	sh.epoch = epoch
	r.mu.Unlock()
	if created {
		r.b.log.Info("consumer group created", "stream", sh.key, "group", r.ci.group, "start_id", start, "epoch", epoch)
		return nil
	}
	if holding && (epoch == seen || epoch < 0) {
		// Recreated, but not by this broker (its epoch did not move), or
		// unknown: move it back if it starts after entries this process
		// holds.
		return r.groupNotAfter(ctx, sh, start)
	}
	return nil
}

// accept turns read or claimed entries into deliveries. counts gives the
// delivery count of claimed entries (nil for new ones: count 1); dups the
// fields entries name more than once (rawread.go).
func (r *reader) accept(sh *shard, msgs []redis.XMessage, counts map[string]int64, dups entryDups) {
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
			sh.lastID = m.ID
		}
		if _, dup := r.q.held[m.ID+sh.ref]; dup {
			continue
		}
		if sh.answered.has(m.ID) {
			// Read again after the group was recreated; answered already.
			ackOnly = append(ackOnly, r.ackOnlyLocked(sh, m))
			continue
		}
		d := &Delivery{r: r, sh: sh, id: m.ID, values: m.Values, count: 1}
		d.dec = r.ci.codec.decodeDups(m.Values, dups[m.ID])
		if cap(d.dec.payload) == 0 {
			// An array of its own, so Middleware can tell it apart
			// (keyQueue.byPayload).
			d.dec.payload = make([]byte, 0, 1)
		}
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
