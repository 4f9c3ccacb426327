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
	OldestRef                         string // OldestID with its shard (keys.shardRef)
	OldestIdle                        time.Duration
	OldestConsumer                    string
	DeadCount                         int64
	Consumers                         []consumerView
	MoreConsumers                     int
	Rates                             rateView
	Err                               string
	// Shards is S; ShardsRead how many of them the totals are over.
	Shards, ShardsRead int
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
		v.Rates = c.rates.view(s.Operation, s.Address)
		page.Streams = append(page.Streams, v)
	}
	c.render(w, r, http.StatusOK, "overview", page)
}

// maxOverviewShards bounds the shards the overview reads per job stream:
// its cost is a few commands per shard, so beyond this many the totals are
// over the first maxOverviewShards shards, and the page says so.
const maxOverviewShards = 64

// shardRead is one shard's commands of readStream.
type shardRead struct {
	info      *redis.XInfoStreamCmd
	groups    *redis.XInfoGroupsCmd
	consumers *redis.XInfoConsumersCmd
	summary   *redis.XPendingCmd
	oldest    *redis.XPendingExtCmd
	dead      *redis.IntCmd
}

// readStream reads one job stream's state in two pipelined round trips,
// each command O(1) or O(consumers) in Redis whatever the backlog, per
// shard key (at most maxOverviewShards); the view is the totals over the
// shards.
func (c *Console) readStream(ctx context.Context, s jobStream) streamView {
	v := streamView{Name: s.Name, Operation: s.Operation, Key: s.Jobs, Dead: s.Dead, Group: s.Group, Lag: -1,
		Shards: len(s.JobKeys), ShardsRead: min(len(s.JobKeys), maxOverviewShards)}
	p := c.rdb.Pipeline()
	reads := make([]shardRead, v.ShardsRead)
	for n := range reads {
		jobs := s.JobKeys[n]
		reads[n] = shardRead{
			info:      p.XInfoStream(ctx, jobs),
			groups:    p.XInfoGroups(ctx, jobs),
			consumers: p.XInfoConsumers(ctx, jobs, s.Group),
			summary:   p.XPending(ctx, jobs, s.Group),
			oldest:    p.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: jobs, Group: s.Group, Start: "-", End: "+", Count: 1}),
			dead:      p.XLen(ctx, s.DeadKeys[n]),
		}
	}
	_, _ = p.Exec(ctx) // each command's error is read below

	var lag int64
	lagKnown := true
	byName := map[string]*consumerView{}
	// perShard[n] is shard n's pending count by consumer.
	perShard := make([]map[string]int64, len(reads))
	for n, rd := range reads {
		if err := rd.dead.Err(); err != nil {
			v.Err = "read " + s.DeadKeys[n] + ": " + err.Error()
			return v
		}
		v.DeadCount += rd.dead.Val()
		if err := rd.info.Err(); err != nil {
			if !noSuchKey(err) {
				v.Err = "read " + s.JobKeys[n] + ": " + err.Error()
				return v
			}
			continue
		}
		v.Exists = true
		v.Length += rd.info.Val().Length
		if id := rd.info.Val().LastGeneratedID; v.LastID == "" || newer(id, v.LastID) {
			v.LastID = id
		}
		groupHere := false
		if rd.groups.Err() == nil {
			for _, g := range rd.groups.Val() {
				if g.Name == s.Group {
					groupHere, v.GroupExists = true, true
					v.Pending += g.Pending
					if g.Lag < 0 {
						lagKnown = false
					}
					lag += g.Lag
				}
			}
		}
		if !groupHere {
			continue
		}
		if o := rd.oldest.Val(); rd.oldest.Err() == nil && len(o) == 1 {
			if v.OldestID == "" || newer(v.OldestID, o[0].ID) {
				v.OldestID, v.OldestIdle, v.OldestConsumer = o[0].ID, o[0].Idle, o[0].Consumer
				v.OldestRef = c.keys.shardRef(n, o[0].ID)
			}
		}
		if rd.consumers.Err() == nil {
			for _, cs := range rd.consumers.Val() {
				cv, ok := byName[cs.Name]
				if !ok {
					byName[cs.Name] = &consumerView{Name: cs.Name, LastSeen: cs.Idle}
				} else if cs.Idle < cv.LastSeen {
					cv.LastSeen = cs.Idle // seen last on the shard it read last
				}
			}
		}
		if rd.summary.Err() == nil {
			perShard[n] = rd.summary.Val().Consumers
			for name, k := range perShard[n] {
				if cv, ok := byName[name]; ok {
					cv.Pending += k
				}
			}
		}
	}
	if v.GroupExists && lagKnown {
		v.Lag = lag
	}
	if !v.GroupExists {
		return v
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
	c.oldestPerConsumer(ctx, s, perShard, list)
	v.Consumers = list
	return v
}

// oldestPerConsumer sets each consumer's oldest pending idle time: one
// XPENDING ... COUNT 1 per consumer and shard where it has entries,
// pipelined; the oldest over the shards wins.
func (c *Console) oldestPerConsumer(ctx context.Context, s jobStream, perShard []map[string]int64, list []consumerView) {
	p := c.rdb.Pipeline()
	type ask struct {
		i   int
		cmd *redis.XPendingExtCmd
	}
	var asks []ask
	for i, cv := range list {
		for n, pend := range perShard {
			if cv.Pending > 0 && pend[cv.Name] > 0 {
				asks = append(asks, ask{i, p.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: s.JobKeys[n], Group: s.Group, Start: "-", End: "+", Count: 1, Consumer: cv.Name})})
			}
		}
	}
	if len(asks) == 0 {
		return
	}
	_, _ = p.Exec(ctx)
	for _, a := range asks {
		if a.cmd.Err() == nil && len(a.cmd.Val()) == 1 && a.cmd.Val()[0].Idle > list[a.i].OldestIdle {
			list[a.i].OldestIdle = a.cmd.Val()[0].Idle
		}
	}
}

// noSuchKey reports Redis's answer for a stream that does not exist.
func noSuchKey(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no such key")
}
