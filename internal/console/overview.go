package console

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// maxConsumers bounds the consumers the overview shows per group (and so its
// per-consumer XPENDING calls).
const maxConsumers = 32

type overviewPage struct {
	Ready      string // "ready" or "not ready: <reason>"
	IsReady    bool
	ReadyKnown bool
	Streams    []streamView
}

type streamView struct {
	Name, Operation, Key, Dead, Group string
	Exists                            bool
	Length                            int64
	LastID                            string
	GroupExists                       bool
	Lag                               int64 // -1 when Redis cannot tell
	Pending                           int64
	OldestID                          string
	OldestIdle                        time.Duration
	OldestConsumer                    string
	DeadCount                         int64
	Consumers                         []consumerView
	MoreConsumers                     int
	Rates                             rateView
	Err                               string
}

type consumerView struct {
	Name       string
	Pending    int64
	OldestIdle time.Duration // idle time of its oldest pending entry
	LastSeen   time.Duration // XINFO CONSUMERS idle: since its last read attempt
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request) {
	page := overviewPage{}
	if c.opts.Ready != nil {
		page.ReadyKnown = true
		if err := c.opts.Ready(r.Context()); err != nil {
			page.Ready = "not ready: " + err.Error()
		} else {
			page.Ready, page.IsReady = "ready", true
		}
	}
	for _, s := range c.keys.streams {
		v := c.readStream(r.Context(), s)
		v.Rates = c.rates.view(s.Operation, s.Jobs)
		page.Streams = append(page.Streams, v)
	}
	c.render(w, r, http.StatusOK, "overview", page)
}

// readStream reads one job stream's state in two pipelined round trips,
// each command O(1) or O(consumers) in Redis whatever the backlog.
func (c *Console) readStream(ctx context.Context, s jobStream) streamView {
	v := streamView{Name: s.Name, Operation: s.Operation, Key: s.Jobs, Dead: s.Dead, Group: s.Group, Lag: -1}
	p := c.rdb.Pipeline()
	info := p.XInfoStream(ctx, s.Jobs)
	groups := p.XInfoGroups(ctx, s.Jobs)
	consumers := p.XInfoConsumers(ctx, s.Jobs, s.Group)
	summary := p.XPending(ctx, s.Jobs, s.Group)
	oldest := p.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: s.Jobs, Group: s.Group, Start: "-", End: "+", Count: 1})
	dead := p.XLen(ctx, s.Dead)
	_, _ = p.Exec(ctx) // each command's error is read below

	if err := dead.Err(); err != nil {
		v.Err = "read " + s.Dead + ": " + err.Error()
		return v
	}
	v.DeadCount = dead.Val()
	if err := info.Err(); err != nil {
		if !noSuchKey(err) {
			v.Err = "read " + s.Jobs + ": " + err.Error()
		}
		return v
	}
	v.Exists, v.Length, v.LastID = true, info.Val().Length, info.Val().LastGeneratedID
	if groups.Err() == nil {
		for _, g := range groups.Val() {
			if g.Name == s.Group {
				v.GroupExists, v.Lag, v.Pending = true, g.Lag, g.Pending
			}
		}
	}
	if !v.GroupExists {
		return v
	}
	if o := oldest.Val(); oldest.Err() == nil && len(o) == 1 {
		v.OldestID, v.OldestIdle, v.OldestConsumer = o[0].ID, o[0].Idle, o[0].Consumer
	}
	byName := map[string]*consumerView{}
	if consumers.Err() == nil {
		for _, cs := range consumers.Val() {
			byName[cs.Name] = &consumerView{Name: cs.Name, Pending: cs.Pending, LastSeen: cs.Idle}
		}
	}
	if summary.Err() == nil {
		for name, n := range summary.Val().Consumers {
			if cv, ok := byName[name]; ok {
				cv.Pending = n
			}
		}
	}
	list := make([]consumerView, 0, len(byName))
	for _, cv := range byName {
		list = append(list, *cv)
	}
	// Busiest first, then by name, so the cap keeps the ones that matter.
	sort.Slice(list, func(i, j int) bool {
		if list[i].Pending != list[j].Pending {
			return list[i].Pending > list[j].Pending
		}
		return list[i].Name < list[j].Name
	})
	if len(list) > maxConsumers {
		v.MoreConsumers = len(list) - maxConsumers
		list = list[:maxConsumers]
	}
	c.oldestPerConsumer(ctx, s, list)
	v.Consumers = list
	return v
}

// oldestPerConsumer sets each consumer's oldest pending idle time: one
// XPENDING ... COUNT 1 per consumer with entries, pipelined.
func (c *Console) oldestPerConsumer(ctx context.Context, s jobStream, list []consumerView) {
	p := c.rdb.Pipeline()
	cmds := make([]*redis.XPendingExtCmd, len(list))
	some := false
	for i, cv := range list {
		if cv.Pending > 0 {
			cmds[i] = p.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: s.Jobs, Group: s.Group, Start: "-", End: "+", Count: 1, Consumer: cv.Name})
			some = true
		}
	}
	if !some {
		return
	}
	_, _ = p.Exec(ctx)
	for i, cmd := range cmds {
		if cmd != nil && cmd.Err() == nil && len(cmd.Val()) == 1 {
			list[i].OldestIdle = cmd.Val()[0].Idle
		}
	}
}

// noSuchKey reports Redis's answer for a stream that does not exist.
func noSuchKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such key")
}
