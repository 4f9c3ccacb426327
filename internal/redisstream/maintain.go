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
		free := 2*r.prefetch() - r.prefetchedLocked()
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
