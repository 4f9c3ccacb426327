package console

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// hub is the one reader of new results for every open live stream: however
// many consoles are open, Redis sees one bounded read per poll
// (XREVRANGE … COUNT liveBatch) and each result is decoded and encoded
// once. It runs while someone listens.
type hub struct {
	c *Console

	mu      sync.Mutex
	subs    map[chan liveBatch]struct{}
	running bool
}

// liveBatch is what one poll found, oldest first. Gap says results were
// left out between the previous batch and this one (more than liveBatch
// arrived within one poll).
type liveBatch struct {
	items []liveItem
	gap   bool
}

type liveItem struct {
	id   string
	res  resultView
	data []byte // the result as JSON
}

// liveBatchSize bounds one poll's read and what a browser is sent per poll.
const liveBatchSize = 200

func newHub(c *Console) *hub { return &hub{c: c, subs: map[chan liveBatch]struct{}{}} }

// subscribe returns a channel of the batches of results written after it
// returns; cancel ends it. Starting the reader, it reads where the newest
// result is now, so a caller that reads what came before after subscribing
// misses nothing.
func (h *hub) subscribe(ctx context.Context) (<-chan liveBatch, func(), error) {
	ch := make(chan liveBatch, 8)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.running {
		_, cursor, err := h.read(ctx, "")
		if err != nil {
			return nil, nil, err
		}
		h.running = true
		go h.run(cursor)
	}
	h.subs[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}, nil
}

func (h *hub) run(cursor string) {
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
		b, next, err := h.read(ctx, cursor)
		if err != nil {
			h.c.log.Warn("console: read new results", "err", err.Error())
		} else {
			cursor = next
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

// read returns the newest results after cursor, at most liveBatchSize; an
// empty cursor starts at the newest result.
func (h *hub) read(ctx context.Context, cursor string) (liveBatch, string, error) {
	if cursor == "" {
		last, err := h.c.rdb.XRevRangeN(ctx, h.c.keys.results, "+", "-", 1).Result()
		if err != nil {
			return liveBatch{}, "", err
		}
		if len(last) == 0 {
			return liveBatch{}, "0-0", nil
		}
		return liveBatch{}, last[0].ID, nil
	}
	msgs, err := h.c.rdb.XRevRangeN(ctx, h.c.keys.results, "+", "("+cursor, liveBatchSize).Result()
	if err != nil {
		return liveBatch{}, cursor, err
	}
	if len(msgs) == 0 {
		return liveBatch{}, cursor, nil
	}
	slices.Reverse(msgs)
	return liveBatch{items: toItems(msgs), gap: len(msgs) == liveBatchSize}, msgs[len(msgs)-1].ID, nil
}

func toItems(msgs []redis.XMessage) []liveItem {
	out := make([]liveItem, 0, len(msgs))
	for _, m := range msgs {
		res := toResult(m)
		data, _ := json.Marshal(res)
		out = append(out, liveItem{id: m.ID, res: res, data: data})
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
