package redisstream

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
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

// publishAndAck appends the publications and acknowledges the entry in one
// atomic step, but only while this consumer still owns the entry: if another
// consumer claimed it meanwhile, nothing is written (that consumer answers
// it), so each entry gets its publications exactly once.
//
// KEYS[1] is the source stream, KEYS[2..] the target streams.
// ARGV: group, consumer, entry id, then per publication: key index, maxlen
// (0 = none), field count n, then n field/value items.
var publishAndAck = redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
local i = 4
while i <= #ARGV do
  local key = KEYS[tonumber(ARGV[i])]
  local maxlen = ARGV[i + 1]
  local n = tonumber(ARGV[i + 2])
  local args
  if maxlen ~= '0' then
    args = {key, 'MAXLEN', '~', maxlen, '*'}
  else
    args = {key, '*'}
  end
  for j = 1, n do args[#args + 1] = ARGV[i + 2 + j] end
  redis.call('XADD', unpack(args))
  i = i + 3 + n
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
return 1
`)

func (r *reader) scriptArgs(req commitReq) ([]string, []any) {
	keys := []string{r.ci.address}
	n := 3
	for _, p := range req.pubs {
		n += 3 + len(p.fields)
	}
	args := make([]any, 0, n)
	args = append(args, r.ci.group, r.b.opts.Consumer, req.d.id)
	for _, p := range req.pubs {
		idx := 0
		for i, k := range keys {
			if k == p.channel.address {
				idx = i + 1
			}
		}
		if idx == 0 {
			keys = append(keys, p.channel.address)
			idx = len(keys)
		}
		args = append(args, idx, p.channel.maxLen, len(p.fields))
		for _, f := range p.fields {
			args = append(args, f)
		}
	}
	return keys, args
}

// commitLoop writes acknowledgements in batches: one round trip carries up
// to CommitBatch entries, each still its own atomic step.
func (r *reader) commitLoop() {
	defer close(r.commitDone)
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
				r.commitBatch(batch, 1)
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
		r.commitBatch(batch, 0)
	}
}

// commitBatch writes a batch, retrying while Redis is unreachable (the
// handler's work and its result are kept, not lost). maxAttempts 0 retries
// until shutdown.
func (r *reader) commitBatch(batch []commitReq, maxAttempts int) {
	for attempt := 1; ; attempt++ {
		err := r.tryCommit(batch)
		if err == nil {
			return
		}
		r.logs.warn("commit acknowledgements; retrying", err)
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
		time.Sleep(backoff(r.b.opts.ReconnectMin, r.b.opts.ReconnectMax, attempt))
	}
}

// tryCommit runs one batch. A transport error returns an error and leaves
// the whole batch to be retried (the script is idempotent: an entry already
// acknowledged is no longer pending and is skipped). Per-entry errors finish
// the entry without acknowledging it, so it is redelivered.
func (r *reader) tryCommit(batch []commitReq) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmds, err := r.runBatch(ctx, batch)
	if err != nil && cmds == nil {
		return err
	}
	if anyNoScript(cmds) {
		// First commit after a start or a Redis restart: load the script and
		// run the batch again (the script skips entries already acknowledged).
		if err := publishAndAck.Load(ctx, r.b.rdb).Err(); err != nil {
			return err
		}
		if cmds, err = r.runBatch(ctx, batch); err != nil && cmds == nil {
			return err
		}
	}
	for _, c := range cmds {
		if isTransport(c.Err()) {
			return c.Err()
		}
	}
	committed := 0
	for i, req := range batch {
		cerr := cmds[i].Err()
		switch {
		case cerr != nil:
			r.logs.warn("commit entry "+req.d.id+"; it stays pending", cerr)
		case !cmdCommitted(cmds[i]):
			r.b.log.Warn("entry was claimed by another consumer; its publications were dropped", "stream", r.ci.address, "entry_id", req.d.id)
		default:
			committed++
		}
		r.finish(req.d)
	}
	r.b.opts.Observer.Committed(r.ci.address, committed)
	return nil
}

func (r *reader) runBatch(ctx context.Context, batch []commitReq) ([]redis.Cmder, error) {
	if r.b.atomic {
		return r.b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, req := range batch {
				keys, args := r.scriptArgs(req)
				publishAndAck.EvalSha(ctx, p, keys, args...)
			}
			return nil
		})
	}
	// Redis Cluster: the streams live in different slots, so no script can
	// touch them all. Publish, then acknowledge: a crash in between can
	// publish an entry's results twice (the redelivery publishes again).
	cmds := make([]redis.Cmder, 0, len(batch))
	for _, req := range batch {
		_, err := r.b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, pub := range req.pubs {
				a := &redis.XAddArgs{Stream: pub.channel.address, Values: pub.fields}
				if pub.channel.maxLen > 0 {
					a.MaxLen, a.Approx = pub.channel.maxLen, true
				}
				p.XAdd(ctx, a)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		ack := r.b.rdb.XAck(ctx, r.ci.address, r.ci.group, req.d.id)
		cmds = append(cmds, ack)
	}
	return cmds, nil
}

func cmdCommitted(c redis.Cmder) bool {
	switch t := c.(type) {
	case *redis.Cmd:
		n, err := t.Int64()
		return err == nil && n == 1
	case *redis.IntCmd:
		return t.Val() == 1
	}
	return false
}

func anyNoScript(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if err := c.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			return true
		}
	}
	return false
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
		return strings.HasPrefix(msg, "LOADING") || strings.HasPrefix(msg, "BUSY") ||
			strings.HasPrefix(msg, "TRYAGAIN") || strings.HasPrefix(msg, "MASTERDOWN")
	}
	return true
}
