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
		for _, sh := range r.shards {
			r.claimIdle(sh)
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

// claimIdle takes over entries pending with any consumer for longer than
// ClaimIdle. Claims may fill the process up to twice the prefetch: entries
// a dead consumer left are older than any new one, and the read loop, which
// stops at the prefetch, then waits for them instead of the other way round.
func (r *reader) claimIdle(sh *shard) {
	start := "0-0"
	for {
		r.mu.Lock()
		free := r.byteCountLocked(min(2*r.prefetch()-r.prefetchedLocked(), r.b.opts.ReadCount), 2*r.b.opts.MaxBytesInHand)
		hasWorkers := len(r.workers) > 0 && !r.draining
		r.mu.Unlock()
		if free <= 0 || !hasWorkers {
			return
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
		if next == "0-0" || next == "" || len(msgs) == 0 {
			return
		}
		start = next
	}
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
