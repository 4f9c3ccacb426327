package redisstream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/redisclient"
)

// commitReq is one entry to acknowledge, with what its handler published.
type commitReq struct {
	d    *Delivery
	pubs []publication
}

func (r *reader) enqueueCommit(req commitReq) {
	select {
	case r.commit <- req:
	case <-r.commitDone:
		// Past the close deadline: the entry stays pending for others.
		r.finish(req.d)
	}
}

// maxPublicationItems bounds the fields and values of one publication: the
// commit script passes them to XADD with Lua's unpack, whose limit is about
// 8,000 items. Publish refuses wider messages and dead letters are cut well
// below it, so the script's own check is a last defence.
const maxPublicationItems = 4096

// publishAndAck commits a batch of entries in one script call. For each
// entry, in order: if this consumer still owns it (XPENDING), append its
// publications and acknowledge it; if another consumer claimed it meanwhile,
// write nothing (that consumer answers it). So each entry gets its
// publications exactly once, together with its XACK. A script runs
// atomically, so the batch is one step; one call per batch keeps Redis's
// per-call cost off each entry.
//
// Redis does not roll back a script that fails halfway, so the script
// first checks everything that could make a write fail — every target
// key's type (a stream or nothing), every publication's width and key
// index — and writes nothing for an entry that fails a check: that entry
// is not acknowledged and its reply is the reason. Writes start only after
// all checks. (OOM cannot strike halfway either: Redis refuses a script's
// writes for lack of memory only before its first write.)
//
// Ownership is read with one XPENDING over the batch's id range for this
// consumer, and the acknowledgements go out as one XACK: per entry, the
// script costs Redis little more than the XADD of its result. The scan
// reads at most rangeScanRatio entries per entry of the batch: when the
// process holds many more entries than it commits (thousands of stops
// waiting in continuations, answered a few at a time), the range may span
// most of them, and then the entries the scan did not reach have their
// owner read one by one. So the scan costs at most a few rows per entry,
// and a whole batch of neighbouring entries one call.
//
// An entry pending with nobody was acknowledged already (say by an earlier
// try of this batch whose reply was lost) unless the consumer group was
// recreated past it (groupgone.go): at or before the floor recorded in
// KEYS[2] and not marked answered there, it is owed an answer. Its
// publications are written, nothing is acknowledged, and its id is marked.
// KEYS[2] is read only then, so a commit costs nothing more otherwise.
//
// KEYS[1] is the source stream, KEYS[2] the group's record (groupKey),
// KEYS[3..] the target streams.
// ARGV: group, consumer, entry count, lowest and highest entry id of the
// batch, the scan's COUNT, maxPublicationItems, then per entry: id,
// publication count,
// then per publication: key index, maxlen (0 = none), field count n, then n
// field/value items. It returns one reply per entry: 1 committed, 0 owned
// by another consumer, 2 no longer pending (acknowledged already), 3
// answered outside the recreated group (published, nothing to
// acknowledge), or the error text of a check or write that failed (that
// entry is not acknowledged).
var publishAndAck = redis.NewScript(publishAndAckLua)

const publishAndAckLua = idNotAfterLua + `
-- Entries of this consumer in the batch's range, as far as the scan went;
-- an entry not among them has its owner read on its own.
local owned = {}
for _, p in ipairs(redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[4], ARGV[5], ARGV[6], ARGV[2])) do
  owned[p[1]] = true
end
local maxItems = tonumber(ARGV[7])
local ktype = {}
local function keyProblem(k)
  if k == nil or k < 3 or k > #KEYS then return 'ERR commit: bad key index' end
  local t = ktype[k]
  if t == nil then
    t = redis.call('TYPE', KEYS[k]).ok
    ktype[k] = t
  end
  if t ~= 'stream' and t ~= 'none' then
    return 'WRONGTYPE commit: target key ' .. KEYS[k] .. ' holds a ' .. t .. ', not a stream; nothing written'
  end
  return nil
end
-- The floor of the recreated group, read once when first needed; false
-- when the record is missing or of another type (then nothing is owed).
local floor = nil
local function owed(id)
  if floor == nil then
    floor = false
    if redis.call('TYPE', KEYS[2]).ok == 'hash' then
      floor = redis.call('HGET', KEYS[2], 'floor')
    end
  end
  return floor and idNotAfter(id, floor) and redis.call('HEXISTS', KEYS[2], 'a:' .. id) == 0
end
-- Check pass: no write before every entry is known to be writable.
local state = {}
local first = {}
local i = 8
for e = 1, tonumber(ARGV[3]) do
  local id = ARGV[i]
  local np = tonumber(ARGV[i + 1])
  i = i + 2
  first[e] = i
  local s = 1
  if not owned[id] then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    if #p == 0 then
      s = 2
    elseif p[1][2] ~= ARGV[2] then
      s = 0
    end
  end
  if s == 2 and owed(id) then s = 3 end
  for k = 1, np do
    local n = tonumber(ARGV[i + 2])
    if s == 1 or s == 3 then
      if n < 2 or n % 2 ~= 0 or n > maxItems then
        s = 'ERR commit: a publication of ' .. n .. ' items (at most ' .. maxItems .. ', even); nothing written'
      else
        s = keyProblem(tonumber(ARGV[i])) or s
      end
    end
    i = i + 3 + n
  end
  state[e] = s
end
-- Write pass.
local acks = {}
for e = 1, tonumber(ARGV[3]) do
  i = first[e]
  local id = ARGV[i - 2]
  local np = tonumber(ARGV[i - 1])
  for k = 1, np do
    local n = tonumber(ARGV[i + 2])
    if state[e] == 1 or state[e] == 3 then
      -- The fields go straight from ARGV (unpack as the last argument), no
      -- table is built per publication.
      local r
      if ARGV[i + 1] ~= '0' then
        r = redis.pcall('XADD', KEYS[tonumber(ARGV[i])], 'MAXLEN', '~', ARGV[i + 1], '*', unpack(ARGV, i + 3, i + 2 + n))
      else
        r = redis.pcall('XADD', KEYS[tonumber(ARGV[i])], '*', unpack(ARGV, i + 3, i + 2 + n))
      end
      if type(r) == 'table' and r.err then state[e] = r.err end
    end
    i = i + 3 + n
  end
  if state[e] == 1 then
    acks[#acks + 1] = id
  elseif state[e] == 3 then
    redis.call('HSET', KEYS[2], 'a:' .. id, 1)
  end
end
for a = 1, #acks, 500 do
  redis.call('XACK', KEYS[1], ARGV[1], unpack(acks, a, math.min(a + 499, #acks)))
end
return state
`

// rangeScanRatio bounds the commit script's scan of the batch's id range:
// at most this many pending entries per entry of the batch.
const rangeScanRatio = 4

// scriptCommand is the whole EVALSHA of publishAndAck for a batch, built at
// its final size (go-redis's EvalSha would copy every argument once more).
func (r *reader) scriptCommand(sh *shard, batch []commitReq) []any {
	// The keys first: KEYS[1] is the source, KEYS[2] the group's record,
	// then one per stream published to, in order of first use: each in the
	// entries' shard (shard.go), so all share one slot.
	keys := []string{sh.key, r.groupKey(sh)}
	n := 7 // group, consumer, entries, lo, hi, scan bound, item bound
	for _, req := range batch {
		n += 2
		for _, p := range req.pubs {
			n += 3 + len(p.fields)
			if k := p.channel.keyIn(sh.n); !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	lo, hi := batch[0].d.id, batch[0].d.id
	for _, req := range batch[1:] {
		if idLess(req.d.id, lo) {
			lo = req.d.id
		}
		if idLess(hi, req.d.id) {
			hi = req.d.id
		}
	}
	cmd := make([]any, 0, 3+len(keys)+n)
	cmd = append(cmd, "evalsha", publishAndAck.Hash(), len(keys))
	for _, k := range keys {
		cmd = append(cmd, k)
	}
	cmd = append(cmd, r.ci.group, r.b.opts.Consumer, len(batch), lo, hi, rangeScanRatio*len(batch), maxPublicationItems)
	// Per entry, strings and the max length go in as pointers (go-redis
	// writes *string and *int64 as their values): a string or an int64 above
	// 255 put in an interface is one allocation each, ~25 per entry. The
	// pointed-to values are not written while the batch is being committed.
	for _, req := range batch {
		cmd = append(cmd, &req.d.id, len(req.pubs))
		for _, p := range req.pubs {
			cmd = append(cmd, slices.Index(keys, p.channel.keyIn(sh.n))+1, &p.channel.maxLen, len(p.fields))
			for j := range p.fields {
				cmd = append(cmd, &p.fields[j])
			}
		}
	}
	return cmd
}

// commitLoop writes acknowledgements in batches: one round trip carries up
// to CommitBatch entries, each still its own atomic step.
func (r *reader) commitLoop() {
	batch := make([]commitReq, 0, r.b.opts.CommitBatch)
	for {
		batch = batch[:0]
		select {
		case req := <-r.commit:
			batch = append(batch, req)
		case <-r.commitStop:
			// Commit what is already queued, then stop.
			for {
				select {
				case req := <-r.commit:
					batch = append(batch, req)
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				r.commitShards(batch, 1)
			}
			return
		}
	fill:
		for len(batch) < cap(batch) {
			select {
			case req := <-r.commit:
				batch = append(batch, req)
			default:
				break fill
			}
		}
		r.commitShards(batch, 0)
	}
}

// commitShards commits a batch as one script call per shard (a script's
// keys must share a slot on a Cluster), the shards' calls at once.
func (r *reader) commitShards(batch []commitReq, maxAttempts int) {
	sh := batch[0].d.sh
	same := true
	for _, req := range batch[1:] {
		if req.d.sh != sh {
			same = false
			break
		}
	}
	if same {
		r.commitBatch(sh, batch, maxAttempts)
		return
	}
	var order []*shard
	parts := map[*shard][]commitReq{}
	for _, req := range batch {
		if _, ok := parts[req.d.sh]; !ok {
			order = append(order, req.d.sh)
		}
		parts[req.d.sh] = append(parts[req.d.sh], req)
	}
	var wg sync.WaitGroup
	for _, sh := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.commitBatch(sh, parts[sh], maxAttempts)
		}()
	}
	wg.Wait()
}

// commitBatch writes a batch, retrying while Redis is unreachable (the
// handler's work and its result are kept, not lost). maxAttempts 0 retries
// until shutdown.
func (r *reader) commitBatch(sh *shard, batch []commitReq, maxAttempts int) {
	for attempt := 1; ; attempt++ {
		err := r.tryCommit(sh, batch)
		if err == nil {
			return
		}
		r.logs.warn("commit acknowledgements; retrying", err)
		if isConnErr(err) {
			r.enterOutage()
		}
		select {
		case <-r.commitStop:
			if maxAttempts == 0 {
				maxAttempts = attempt + 3
			}
		default:
		}
		if maxAttempts > 0 && attempt >= maxAttempts {
			// Give up: the entries stay pending and are redelivered.
			for _, req := range batch {
				r.finish(req.d)
			}
			return
		}
		t := time.NewTimer(backoff(r.b.opts.ReconnectMin, r.b.opts.ReconnectMax, attempt))
		select {
		case <-t.C:
		case <-r.commitStop:
			// Close reached its deadline with this batch unwritten: one
			// last try now, not a backoff Close cannot cut short.
			t.Stop()
			maxAttempts = attempt + 1
		}
	}
}

// commitOutcome is what became of one entry of a batch.
type commitOutcome struct {
	committed bool
	gone      bool  // no longer pending: nothing to do
	err       error // not acknowledged: it stays pending
	whole     bool  // err failed the whole call (NOGROUP, say), not this entry
	owed      bool  // committed outside a recreated group (groupgone.go)
}

// tryCommit runs one batch. A transport error returns an error and leaves
// the whole batch to be retried (the script is idempotent: an entry already
// acknowledged is no longer pending and is skipped). Per-entry errors finish
// the entry without acknowledging it, so it is redelivered.
func (r *reader) tryCommit(sh *shard, batch []commitReq) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var outs []commitOutcome
	var err error
	if r.b.atomic {
		outs, err = r.commitScript(ctx, sh, batch)
	} else {
		outs, err = r.commitPlain(ctx, sh, batch)
	}
	if err != nil {
		return err
	}
	// Remembered before any entry is let go, so one read again at once is
	// recognised (groupgone.go).
	answered := make([]string, 0, len(batch))
	for i, req := range batch {
		if outs[i].committed {
			answered = append(answered, req.d.id)
		}
	}
	r.noteAnswered(sh, answered)
	committed := 0
	for i, req := range batch {
		switch o := outs[i]; {
		case o.err != nil:
			// Nothing of the entry was written; it stays pending and comes
			// back at the next claim. Health reports it meanwhile.
			if !o.whole {
				r.b.commitFails.failed(sh.key, req.d.id, o.err)
			}
			r.logs.warn("commit entry "+req.d.id+" refused, nothing written; it stays pending", o.err)
			r.finish(req.d)
			continue
		case o.gone:
			r.b.log.Debug("entry no longer pending at commit (acknowledged by an earlier try)", "stream", sh.key, "entry_id", req.d.id)
		case !o.committed:
			r.b.log.Warn("entry was claimed by another consumer; its publications were dropped", "stream", sh.key, "entry_id", req.d.id)
		case o.owed:
			r.b.log.Info("entry answered outside the recreated consumer group, which starts after it", "stream", sh.key, "entry_id", req.d.id)
			committed++
		default:
			committed++
		}
		r.b.commitFails.settled(sh.key, req.d.id)
		r.finish(req.d)
	}
	r.b.opts.Observer.Committed(r.ci.address, committed)
	return nil
}

func (r *reader) commitScript(ctx context.Context, sh *shard, batch []commitReq) ([]commitOutcome, error) {
	seen := r.epochNow(sh)
	cmd := r.scriptCommand(sh, batch)
	res, err := redisclient.EvalIfNoScript(ctx, r.b.rdb, r.b.rdb.Do(ctx, cmd...), cmd, publishAndAckLua).Result()
	if err != nil {
		if isTransport(err) {
			return nil, err
		}
		if isNoGroup(err) {
			// The group vanished: nothing was written. Recreate it before
			// the oldest entry held, then retry the batch (groupgone.go).
			if cerr := r.createGroup(sh, seen); cerr != nil {
				return nil, cerr
			}
			return nil, fmt.Errorf("commit: %w", err)
		}
		// The script failed as a whole (NOGROUP, say): nothing of it that
		// matters was written; every entry stays pending.
		outs := make([]commitOutcome, len(batch))
		for i := range outs {
			outs[i].err, outs[i].whole = err, true
		}
		return outs, nil
	}
	replies, ok := res.([]any)
	if !ok || len(replies) != len(batch) {
		return nil, fmt.Errorf("commit script: unexpected reply %T of %d entries", res, len(batch))
	}
	outs := make([]commitOutcome, len(batch))
	for i, rep := range replies {
		switch v := rep.(type) {
		case int64:
			outs[i].committed, outs[i].gone, outs[i].owed = v == 1 || v == 3, v == 2, v == 3
		case string:
			if strings.HasPrefix(v, "OOM ") {
				// Redis refuses writes before a script's first one only,
				// so nothing was written: retry the whole batch while
				// memory is short, as for an outage (no redelivery).
				return nil, fmt.Errorf("commit script: %w", serverError(v))
			}
			outs[i].err = errors.New(v)
		default:
			outs[i].err = fmt.Errorf("commit script: unexpected reply %T", rep)
		}
	}
	return outs, nil
}

// commitPlain publishes, then acknowledges, without a script: only when
// Options.Atomic forbids the script. A crash in between can publish an
// entry's results twice (the redelivery publishes again).
func (r *reader) commitPlain(ctx context.Context, sh *shard, batch []commitReq) ([]commitOutcome, error) {
	outs := make([]commitOutcome, len(batch))
	for i, req := range batch {
		_, err := r.b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, pub := range req.pubs {
				a := &redis.XAddArgs{Stream: pub.channel.keyIn(sh.n), Values: pub.fields}
				if pub.channel.maxLen > 0 {
					a.MaxLen, a.Approx = pub.channel.maxLen, true
				}
				p.XAdd(ctx, a)
			}
			return nil
		})
		if err == nil {
			var n int64
			n, err = r.b.rdb.XAck(ctx, sh.key, r.ci.group, req.d.id).Result()
			outs[i].committed = n == 1
		}
		if err != nil {
			if isTransport(err) {
				return nil, err
			}
			outs[i].err = err
		}
	}
	return outs, nil
}

// isTransport tells connection-level failures (retry the batch) from
// replies of the server about one entry.
func isTransport(err error) bool {
	if err == nil {
		return false
	}
	var re redis.Error
	if errors.As(err, &re) {
		msg := re.Error()
		// LOADING, BUSY and the like mean "try again later" too.
		// OOM: Redis refuses writes until memory is freed.
		return strings.HasPrefix(msg, "LOADING") || strings.HasPrefix(msg, "BUSY") || strings.HasPrefix(msg, "OOM ") ||
			strings.HasPrefix(msg, "TRYAGAIN") || strings.HasPrefix(msg, "MASTERDOWN")
	}
	return true
}
