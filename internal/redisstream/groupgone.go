package redisstream

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// The consumer group vanishing (XGROUP DESTROY, or the stream deleted)
// takes the pending entries list with it: entries in hand can no longer be
// acknowledged, and where the group starts again decides what is skipped
// or replayed.
//
// One process recreates the group just before the oldest entry it still
// holds, so those entries are read again into the new group's pending list
// and their commits, retried meanwhile, pass the ownership check. It
// remembers the ids it answered lately (answeredKeep of them): an entry
// read again that it answered already is only acknowledged.
//
// Replicas: the first to recreate the group sets its start, and another
// replica may hold entries at or before it, which the new group will never
// deliver, and may never see NOGROUP itself. So the broker records, in a
// hash next to the stream (groupKey), where the group it created starts
// (its "floor": no entry at or before it is ever delivered by that group),
// with a counter of the groups it created. An entry in hand that a commit
// finds not pending at all and at or before the floor was read from an
// earlier group and is owed an answer: the commit writes its publications,
// with nothing to acknowledge, and marks the id in the hash so a retried
// commit or a second holder writes nothing more (publishAndAck). A Nak'd
// entry in that state is retried in the process (redeliver). An entry after
// the floor is, or will be, delivered by the new group: dropped, as before.
//
// A group created by hand (or by anything but this broker) leaves the hash
// as it was: a replica that sees NOGROUP and finds such a group past
// entries it holds moves it back before them (XGROUP SETID), a replay,
// never a skip; one that sees no NOGROUP is not told, and its entries at or
// before that group's start get no result (docs/broker.md).

// answeredKeep is how many answered ids a reader remembers.
const answeredKeep = 1 << 16

// answeredIDs is a bounded set of entry ids, oldest forgotten first. Ids
// are kept as numbers: an id string read from a reply is a substring of
// its whole entry (rawresp.go), which keeping it would keep alive.
type answeredIDs struct {
	set  map[EntryID]struct{}
	ring []EntryID
	next int
}

func (a *answeredIDs) add(s string) {
	id, ok := ParseEntryID(s)
	if !ok {
		return // not an id Redis gives: never read again
	}
	if a.set == nil {
		a.set = make(map[EntryID]struct{}, 1024)
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

func (a *answeredIDs) has(s string) bool {
	id, ok := ParseEntryID(s)
	if !ok {
		return false
	}
	_, ok = a.set[id]
	return ok
}

// noteAnswered records committed entries of sh.
func (r *reader) noteAnswered(sh *shard, ids []string) {
	if len(ids) == 0 {
		return
	}
	r.mu.Lock()
	for _, id := range ids {
		sh.answered.add(id)
	}
	r.mu.Unlock()
}

// ackOnlyLocked holds an entry read again after the group was recreated
// that this process answered already: it is acknowledged, not handled.
func (r *reader) ackOnlyLocked(sh *shard, m redis.XMessage) *Delivery {
	d := &Delivery{r: r, sh: sh, id: m.ID, count: 1}
	r.q.hold(d)
	return d
}

// recreateFrom is where sh's recreated group starts: just before the
// oldest entry of sh held (read, not yet committed), else after the last
// entry read from sh, else StartID.
func (r *reader) recreateFromLocked(sh *shard) string {
	low := ""
	for _, d := range r.q.held {
		if d.sh == sh && (low == "" || idLess(d.id, low)) {
			low = d.id
		}
	}
	if low != "" {
		return idBefore(low)
	}
	if sh.lastID != "" {
		return sh.lastID
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
func (r *reader) groupNotAfter(ctx context.Context, sh *shard, start string) error {
	gs, err := r.b.rdb.XInfoGroups(ctx, sh.key).Result()
	if err != nil {
		return fmt.Errorf("read consumer group %s: %w", r.ci.group, err)
	}
	for _, g := range gs {
		if g.Name != r.ci.group || !idLess(start, g.LastDeliveredID) {
			continue
		}
		if err := r.b.rdb.XGroupSetID(ctx, sh.key, r.ci.group, start).Err(); err != nil {
			return fmt.Errorf("move consumer group %s back to %s: %w", r.ci.group, start, err)
		}
		r.b.log.Info("consumer group moved back before entries in hand", "stream", sh.key, "group", r.ci.group, "start_id", start, "was", g.LastDeliveredID)
	}
	return nil
}

// groupKey is the hash recording the consumer group this broker last
// created on sh's stream: "epoch" (how many it created), "floor" (where
// it started) and "a:<id>" (entries answered outside it). It starts with
// the stream key, so it shares the shard's hash tag and slot.
func (r *reader) groupKey(sh *shard) string {
	return sh.key + ":" + r.ci.group + ":epoch"
}

func (r *reader) epochNow(sh *shard) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return sh.epoch
}

// idNotAfterLua defines idNotAfter(a, b): entry id a is at or before b.
// Ids are compared as digit strings: their numbers exceed a Lua double.
const idNotAfterLua = `
local function idNotAfter(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if not am or not bm then return false end
  if #am ~= #bm then return #am < #bm end
  if am ~= bm then return am < bm end
  if #as ~= #bs then return #as < #bs end
  return as <= bs
end
`

// createGroupScript creates the consumer group (and the stream) and, when
// it created it, records it: the epoch counter goes up, the floor is the
// group's last-delivered id, and marks of the group before are dropped.
// Both keys' types are checked before the first write; a record of the
// wrong type refuses only a creation (a group already there is used, its
// epoch unknown: -1).
//
// KEYS[1] the stream, KEYS[2] groupKey; ARGV[1] the group, ARGV[2] the
// start id. It returns {1 created or 0 there already, epoch}.
var createGroupScript = redis.NewScript(`
local function lastDelivered()
  if redis.call('EXISTS', KEYS[1]) == 0 then return nil end
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local name, last
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
    end
    if name == ARGV[1] then return last end
  end
  return nil
end
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'stream' and t ~= 'none' then
  return redis.error_reply('WRONGTYPE key ' .. KEYS[1] .. ' holds a ' .. t .. ', not a stream')
end
local ht = redis.call('TYPE', KEYS[2]).ok
if ht ~= 'hash' and ht ~= 'none' then
  if lastDelivered() then return {0, -1} end
  return redis.error_reply('WRONGTYPE key ' .. KEYS[2] .. ' holds a ' .. ht .. ', not a hash')
end
local epoch = 0
if ht == 'hash' then epoch = tonumber(redis.call('HGET', KEYS[2], 'epoch')) or 0 end
local r = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], ARGV[2], 'MKSTREAM')
if type(r) == 'table' and r.err then
  if string.sub(r.err, 1, 9) == 'BUSYGROUP' then return {0, epoch} end
  return redis.error_reply(r.err)
end
local floor = lastDelivered()
epoch = epoch + 1
redis.call('DEL', KEYS[2])
if floor then
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'floor', floor)
else
  redis.call('HSET', KEYS[2], 'epoch', epoch)
end
return {1, epoch}
`)

// makeGroup creates the consumer group from start: through
// createGroupScript when the broker's scripts may touch the stream's
// neighbours (always, unless Options.Atomic forbids it: on a Cluster the
// record shares the shard's slot), else plainly (epoch 0: nothing
// recorded).
func (r *reader) makeGroup(ctx context.Context, sh *shard, start string) (created bool, epoch int64, err error) {
	if !r.b.atomic {
		err = r.b.rdb.XGroupCreateMkStream(ctx, sh.key, r.ci.group, start).Err()
		if err != nil && strings.HasPrefix(err.Error(), "BUSYGROUP") {
			return false, 0, nil
		}
		return err == nil, 0, err
	}
	res, err := createGroupScript.Run(ctx, r.b.rdb, []string{sh.key, r.groupKey(sh)}, r.ci.group, start).Int64Slice()
	if err != nil {
		return false, 0, err
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("create group script: %d values in its reply", len(res))
	}
	return res[0] == 1, res[1], nil
}

// orphanedScript tells whether an entry is owed an answer by whoever holds
// it: pending with nobody and at or before the floor of the group this
// broker last created, so never to be delivered again, and not answered
// outside the group yet. KEYS[1] the stream, KEYS[2] groupKey; ARGV[1]
// the group, ARGV[2] the entry id. It returns 1 or 0 and writes nothing.
var orphanedScript = redis.NewScript(idNotAfterLua + `
if redis.call('TYPE', KEYS[2]).ok ~= 'hash' then return 0 end
local floor = redis.call('HGET', KEYS[2], 'floor')
if not floor or not idNotAfter(ARGV[2], floor) then return 0 end
if redis.call('HEXISTS', KEYS[2], 'a:' .. ARGV[2]) == 1 then return 0 end
if #redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1) > 0 then return 0 end
return 1
`)

// orphaned runs orphanedScript for an entry in hand.
func (r *reader) orphaned(sh *shard, id string) (bool, error) {
	if !r.b.atomic {
		return false, nil
	}
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	n, err := orphanedScript.Run(ctx, r.b.rdb, []string{sh.key, r.groupKey(sh)}, r.ci.group, id).Int()
	if err != nil {
		return false, fmt.Errorf("look for entry %s in the recreated group: %w", id, err)
	}
	return n == 1, nil
}
