package redisstream

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The consumer group vanishing (XGROUP DESTROY, or the stream deleted)
// takes the pending entries list with it: entries in hand can no longer be
// acknowledged, and where the group starts again decides what is skipped
// or replayed. This process:
//   - recreates the group just before the oldest entry it still holds, so
//     nothing in hand is skipped: those entries are read again into the new
//     group's pending list (with this consumer), and their commits, retried
//     meanwhile, then pass the ownership check;
//   - remembers the ids it answered lately (answeredKeep of them), and an
//     entry read again that it already answered is only acknowledged, not
//     handled again.
// Another process does not know what this one answered. With replicas,
// the first to recreate the group sets its start; one that then sees
// NOGROUP itself (its read or its commit) and finds the group recreated
// past entries it holds moves it back (XGROUP SETID): a replay, never a
// skip. A replica that sees no NOGROUP (the group came back before its
// next read or commit) is not told: its entries older than the new start
// are skipped (docs/broker.md).

// answeredKeep is how many answered ids a reader remembers.
const answeredKeep = 1 << 16

// answeredIDs is a bounded set of entry ids, oldest forgotten first.
type answeredIDs struct {
	set  map[string]struct{}
	ring []string
	next int
}

func (a *answeredIDs) add(id string) {
	if a.set == nil {
		a.set = make(map[string]struct{}, 1024)
	}
	if len(a.ring) < answeredKeep {
		a.ring = append(a.ring, id)
	} else {
		delete(a.set, a.ring[a.next])
		a.ring[a.next] = id
		a.next = (a.next + 1) % answeredKeep
	}
	a.set[id] = struct{}{}
}

func (a *answeredIDs) has(id string) bool {
	_, ok := a.set[id]
	return ok
}

// noteAnswered records committed entries.
func (r *reader) noteAnswered(ids []string) {
	if len(ids) == 0 {
		return
	}
	r.mu.Lock()
	for _, id := range ids {
		r.answered.add(id)
	}
	r.mu.Unlock()
}

// ackOnlyLocked holds an entry read again after the group was recreated
// that this process answered already: it is acknowledged, not handled.
func (r *reader) ackOnlyLocked(m redis.XMessage) *Delivery {
	d := &Delivery{r: r, id: m.ID, count: 1}
	r.q.held[m.ID] = d
	return d
}

// recreateFrom is where a recreated group starts: just before the oldest
// entry held (read, not yet committed), else after the last entry read,
// else StartID.
func (r *reader) recreateFromLocked() string {
	low := ""
	for id := range r.q.held {
		if low == "" || idLess(id, low) {
			low = id
		}
	}
	if low != "" {
		return idBefore(low)
	}
	if r.lastID != "" {
		return r.lastID
	}
	return r.b.opts.StartID
}

// idBefore is the entry id just before id ("5-0" → "4-18446744073709551615").
func idBefore(id string) string {
	ms, seq, _ := strings.Cut(id, "-")
	m, err1 := strconv.ParseUint(ms, 10, 64)
	s, err2 := strconv.ParseUint(seq, 10, 64)
	switch {
	case err1 != nil || err2 != nil:
		return "0"
	case s > 0:
		return ms + "-" + strconv.FormatUint(s-1, 10)
	case m > 0:
		return strconv.FormatUint(m-1, 10) + "-18446744073709551615"
	}
	return "0"
}

// groupNotAfter moves the group's last-delivered id back to start if it is
// past it. Moving back only replays (a duplicate answer), never skips.
func (r *reader) groupNotAfter(ctx context.Context, start string) error {
	gs, err := r.b.rdb.XInfoGroups(ctx, r.ci.address).Result()
	if err != nil {
		return fmt.Errorf("read consumer group %s: %w", r.ci.group, err)
	}
	for _, g := range gs {
		if g.Name != r.ci.group || !idLess(start, g.LastDeliveredID) {
			continue
		}
		if err := r.b.rdb.XGroupSetID(ctx, r.ci.address, r.ci.group, start).Err(); err != nil {
			return fmt.Errorf("move consumer group %s back to %s: %w", r.ci.group, start, err)
		}
		r.b.log.Info("consumer group moved back before entries in hand", "stream", r.ci.address, "group", r.ci.group, "start_id", start, "was", g.LastDeliveredID)
	}
	return nil
}
