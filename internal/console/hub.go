package console

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// hub is the one reader of new results for every open live stream: however
// many consoles are open, Redis sees one bounded read per shard per poll
// (XREVRANGE … COUNT liveBatch, pipelined: one key per command, so no
// CROSSSLOT on a Cluster) and each result is decoded and encoded once. It
// runs while someone listens.
type hub struct {
	c *Console

	mu      sync.Mutex
	subs    map[chan liveBatch]struct{}
	running bool
}

// liveBatch is what one poll found, oldest first. Gap says results were
// left out between the previous batch and this one (more than liveBatch
// arrived on a shard within one poll). Cursor is where the batch ends.
type liveBatch struct {
	items  []liveItem
	gap    bool
	cursor cursor
}

type liveItem struct {
	shard int
	id    string
	res   resultView
	data  []byte // the result as JSON
}

// liveBatchSize bounds one poll's read per shard and what a browser is sent
// per poll and shard.
const liveBatchSize = 200

func newHub(c *Console) *hub { return &hub{c: c, subs: map[chan liveBatch]struct{}{}} }

// subscribe returns a channel of the batches of results written after it
// returns; cancel ends it. Starting the reader, it reads where the newest
// result of each shard is now, so a caller that reads what came before
// after subscribing misses nothing.
func (h *hub) subscribe(ctx context.Context) (<-chan liveBatch, func(), error) {
	ch := make(chan liveBatch, 8)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running {
		cur, err := h.newest(ctx)
		if err != nil {
			return nil, nil, err
		}
		h.running = true
		go h.run(cur)
	}
	h.subs[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}, nil
}

func (h *hub) run(cur cursor) {
	ctx := h.c.done
	t := time.NewTicker(h.c.opts.LivePoll)
	defer t.Stop()
	for {
		h.mu.Lock()
		if len(h.subs) == 0 || ctx.Err() != nil {
			h.running = false
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		b, err := h.c.readAfter(ctx, cur, false)
		if err != nil {
			h.c.log.Warn("console: read new results", "err", err.Error())
		} else {
			cur = b.cursor
			if len(b.items) > 0 {
				h.publish(b)
			}
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// newest is the cursor of the newest result of every shard.
func (h *hub) newest(ctx context.Context) (cursor, error) {
	p := h.c.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, h.c.keys.shards())
	for n, key := range h.c.keys.results {
		cmds[n] = p.XRevRangeN(ctx, key, "+", "-", 1)
	}
	if _, err := p.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read the newest results: %w", err)
	}
	cur := startCursor(len(cmds))
	for n, cmd := range cmds {
		if last := cmd.Val(); len(last) == 1 {
			cur[n] = last[0].ID
		}
	}
	return cur, nil
}

// readAfter returns the results after cur, oldest first, at most
// liveBatchSize per shard: the oldest ones (oldestFirst: catching up, XRANGE)
// or the newest ones (following, XREVRANGE, which bounds a poll's cost
// whatever the backlog). One command per shard, pipelined.
func (c *Console) readAfter(ctx context.Context, cur cursor, oldestFirst bool) (liveBatch, error) {
	p := c.rdb.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(cur))
	for n, key := range c.keys.results {
		if oldestFirst {
			cmds[n] = p.XRangeN(ctx, key, "("+cur[n], "+", liveBatchSize)
		} else {
			cmds[n] = p.XRevRangeN(ctx, key, "+", "("+cur[n], liveBatchSize)
		}
	}
	if _, err := p.Exec(ctx); err != nil {
		return liveBatch{cursor: cur}, fmt.Errorf("read the results: %w", err)
	}
	b := liveBatch{cursor: slices.Clone(cur)}
	var all []shardMsg
	for n, cmd := range cmds {
		msgs := cmd.Val()
		if len(msgs) == 0 {
			continue
		}
		if len(msgs) == liveBatchSize {
			b.gap = true
		}
		if !oldestFirst {
			slices.Reverse(msgs)
		}
		b.cursor[n] = msgs[len(msgs)-1].ID
		for _, m := range msgs {
			all = append(all, shardMsg{n, m})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return olderMsg(all[i], all[j]) })
	b.items = c.toItems(all)
	return b, nil
}

func (c *Console) toItems(msgs []shardMsg) []liveItem {
	out := make([]liveItem, 0, len(msgs))
	for _, sm := range msgs {
		res := c.shardResult(sm.n, sm.m)
		data, _ := json.Marshal(res)
		out = append(out, liveItem{shard: sm.n, id: sm.m.ID, res: res, data: data})
	}
	return out
}

// publish hands a batch to every subscriber; one that is not keeping up
// loses it (and sees a gap) instead of holding up the others.
func (h *hub) publish(b liveBatch) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- b:
		default:
		}
	}
}
