package redisstream

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

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
		r.mu.Lock()
		out := r.outage
		r.mu.Unlock()
		// In an outage the probe refreshes held entries when Redis is back.
		// A claim after a refresh that could not reach Redis would take this
		// process's own entries, gone idle while Redis was away, and charge
		// each a delivery.
		if out || isConnErr(r.touchHeld()) {
			continue
		}
		until := r.claimUntil()
		for _, sh := range r.shards {
			r.claimIdle(sh, until)
		}
		if ci := r.b.opts.ConsumerIdle; ci > 0 && time.Since(lastCleanup) > ci/4 {
			for _, sh := range r.shards {
				r.cleanupConsumers(sh)
			}
			lastCleanup = time.Now()
		}
	}
}

// touchHeld resets the idle time of every entry the process still owns, so
// live entries are never claimed by others (XCLAIM … JUSTID counts no
// delivery). An entry another consumer claimed meanwhile (this one was cut
// off from Redis longer than ClaimIdle, say) is left with it: the check and
// the XCLAIM run in one script, so no claim can slip in between. Its
// handler's commit then writes nothing (the ownership check).
func (r *reader) touchHeld() error {
	if r.ci.group == "" {
		return nil // group-less channels hold nothing in Redis
	}
	r.mu.Lock()
	byShard := make(map[*shard][]any, len(r.shards))
	for _, d := range r.q.held {
		byShard[d.sh] = append(byShard[d.sh], d.id)
	}
	r.mu.Unlock()
	for sh, ids := range byShard {
		for len(ids) > 0 {
			chunk := ids[:min(len(ids), 500)]
			ids = ids[len(chunk):]
			ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
			err := touchOwned.Run(ctx, r.b.rdb, []string{sh.key}, append([]any{r.ci.group, r.b.opts.Consumer}, chunk...)...).Err()
			cancel()
			if err != nil {
				r.logs.warn("keep held entries", err)
				return err
			}
		}
	}
	return nil
}

// touchOwned refreshes the entries of ARGV[3..] that are pending with
// consumer ARGV[2] of group ARGV[1] on stream KEYS[1], and only those; it
// returns how many.
var touchOwned = redis.NewScript(`
local n = 0
for i = 3, #ARGV do
  if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2]) == 1 then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    n = n + 1
  end
end
return n
`)

// claimUntil is when a claim round that began now must end: half an
// interval later, so the next round's refresh of held entries is never
// late.
func (r *reader) claimUntil() time.Time {
	return time.Now().Add(r.b.opts.ClaimInterval / 2)
}

// claimIdle takes over entries pending with any consumer for longer than
// ClaimIdle. Claims may fill the process up to twice the prefetch: entries
// a dead consumer left are older than any new one, and the read loop, which
// stops at the prefetch, then waits for them instead of the other way round.
//
// It goes through the whole pending list, until until. XAUTOCLAIM looks at
// ten entries per entry it may claim, so a call can come back empty with
// the list not done: entries another consumer has just claimed at its head,
// and before a process has read anything it may claim one entry at a time
// (the size of entries is not known yet). A round that stopped there left
// a dead consumer's entries to wait for the next, in rtchaos's kill
// scenario past guarantee 5's bound; now the next idle entry is looked up
// (firstIdle) and the claim goes on from it. When more are left than there
// is room for, it takes them as the workers free room.
func (r *reader) claimIdle(sh *shard, until time.Time) {
	start := "0-0"
	for {
		r.mu.Lock()
		free := r.byteCountLocked(min(2*r.prefetch()-r.prefetchedLocked(), r.b.opts.ReadCount), 2*r.b.opts.MaxBytesInHand)
		hasWorkers := len(r.workers) > 0 && !r.draining
		r.mu.Unlock()
		if !hasWorkers {
			return
		}
		if free <= 0 {
			// Only once this round has begun the list (start moved on) is
			// there anything known to wait for.
			if start == "0-0" || !r.waitRoom(until) {
				return
			}
			continue
		}
		ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
		msgs, next, dups, err := autoClaimRaw(ctx, r.b.rdb, &redis.XAutoClaimArgs{
			Stream: sh.key, Group: r.ci.group, Consumer: r.b.opts.Consumer,
			MinIdle: r.b.opts.ClaimIdle, Start: start, Count: int64(free),
		})
		cancel()
		if err != nil {
			if r.ctx.Err() == nil {
				r.logs.warn("claim idle entries", err)
			}
			return
		}
		if len(msgs) > 0 {
			counts, err := r.deliveryCounts(sh, msgs)
			if err != nil {
				r.logs.warn("read delivery counts", err)
				return
			}
			for range msgs {
				r.b.opts.Observer.Redelivered(r.ci.address)
			}
			r.b.log.Info("claimed idle entries", "stream", sh.key, "count", len(msgs))
			r.accept(sh, msgs, counts, dups)
		}
		if next == "0-0" || next == "" || time.Now().After(until) || r.ctx.Err() != nil {
			return
		}
		if len(msgs) == 0 {
			id, ok := r.firstIdle(sh, next)
			if !ok {
				return
			}
			next = id
		}
		start = next
	}
}

// firstIdle is the first entry from id on that is pending for longer than
// ClaimIdle with any consumer (one XPENDING IDLE, which Redis scans
// through itself); false when there is none, or on an error.
func (r *reader) firstIdle(sh *shard, from string) (string, bool) {
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	p, err := r.b.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: sh.key, Group: r.ci.group, Idle: r.b.opts.ClaimIdle, Start: from, End: "+", Count: 1,
	}).Result()
	if err != nil {
		if r.ctx.Err() == nil {
			r.logs.warn("find idle entries", err)
		}
		return "", false
	}
	if len(p) == 0 {
		return "", false
	}
	return p[0].ID, true
}

// claimPoll is how often a claim round waiting for room looks again.
const claimPoll = 10 * time.Millisecond

// waitRoom sleeps one claimPoll; false when that would pass until or
// reading ends.
func (r *reader) waitRoom(until time.Time) bool {
	if time.Until(until) < claimPoll {
		return false
	}
	r.sleep(claimPoll)
	return r.ctx.Err() == nil
}

// deliveryCounts reads the delivery count of exactly the claimed entries:
// one XPENDING per id, pipelined. (One XPENDING over the claimed ids' range
// would also return the other entries this consumer holds in between, and
// with a deep prefetch the claimed ones could fall outside its count.)
func (r *reader) deliveryCounts(sh *shard, msgs []redis.XMessage) (map[string]int64, error) {
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	cmds := make([]*redis.XPendingExtCmd, len(msgs))
	_, err := r.b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range msgs {
			cmds[i] = p.XPendingExt(ctx, &redis.XPendingExtArgs{
				Stream: sh.key, Group: r.ci.group, Start: m.ID, End: m.ID, Count: 1,
			})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int64, len(msgs))
	for i, m := range msgs {
		counts[m.ID] = 1
		if pend, _ := cmds[i].Result(); len(pend) == 1 && pend[0].ID == m.ID {
			counts[m.ID] = pend[0].RetryCount
		}
	}
	return counts, nil
}

func (r *reader) cleanupConsumers(sh *shard) {
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	cs, err := r.b.rdb.XInfoConsumers(ctx, sh.key, r.ci.group).Result()
	if err != nil {
		return
	}
	for _, c := range cs {
		if c.Name == r.b.opts.Consumer || c.Pending > 0 || c.Idle < r.b.opts.ConsumerIdle {
			continue
		}
		if err := r.b.rdb.XGroupDelConsumer(ctx, sh.key, r.ci.group, c.Name).Err(); err == nil {
			r.b.log.Info("removed idle consumer", "stream", sh.key, "consumer_removed", c.Name, "idle", c.Idle.String())
		}
	}
}
