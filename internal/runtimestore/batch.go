package runtimestore

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/internal/redisclient"
)

// batcher pipelines the calls of concurrent callers: while one pipeline is
// on the wire, calls queue up and leave together in the next one. With many
// workers (rtmanager runs one per controller) that turns N round trips, N
// write and N read syscalls on both sides into one each. A caller that
// finds the batcher idle starts its loop, which yields once before sending:
// callers woken together (the workers one read hands its entries to) then
// leave together instead of the first alone and the rest a round trip
// later; a caller that is truly alone waits only for that yield.
//
// Calls of the same script and the same shard are merged into one script
// call over all their keys (the scripts take any number of records), so
// Redis pays a script call's own cost once per batch rather than once per
// stop. Each record still gets its own reply and an error for one record
// does not fail the others. A caller's log entry is written by its script
// (a logged script, sharded layout: the shard's log shares the records'
// slot) or follows its script in the same pipeline (not sharded).
//
// In the sharded layout one shard's records share a slot, so calls merge
// per shard even on a Redis Cluster, and the calls of different shards go
// as separate script calls in the same pipeline (go-redis's Cluster
// pipeline sends each to its node). Unsharded on a Cluster, the records
// live on different slots, so every call stays a script call of its own
// (merge false).
//
// A caller whose context ends stops waiting, like a cancelled call on a
// connection: its commands may still run.
type batcher struct {
	c      redis.UniversalClient
	merge  bool
	maxLen any // the operation log's MAXLEN, for logged scripts

	mu      sync.Mutex
	queue   []*call
	running bool
}

func newBatcher(c redis.UniversalClient, sharded bool, maxLen any) *batcher {
	return &batcher{c: c, merge: sharded || !redisclient.IsCluster(c), maxLen: maxLen}
}

// script is a Lua script with its source, for the EVAL fallback.
type script struct {
	*redis.Script
	src string
	// logged: the script also appends each record's log entry (logged.go);
	// KEYS[1] is the operation log, then the records.
	logged bool
}

func newScript(src string) *script { return &script{Script: redis.NewScript(src), src: src} }

func newLoggedScript(src string) *script {
	return &script{Script: redis.NewScript(src), src: src, logged: true}
}

// call is one caller's work: a script over one record and/or an operation
// log entry.
type call struct {
	script *script // nil: the log entry only
	key    string
	args   []any // may point into callValues (args.go)
	callValues
	shard int   // the record's shard: calls merge per script and shard
	log   []any // the whole XADD of an operation log entry, pipelined
	// A logged script's entry: the log's key (the record's shard's) and
	// the entry's field values.
	logKey string
	entry  []any

	// Set by the batcher before it signals done (buffered: one send,
	// which never blocks; the channel outlives the call in callPool).
	// reply is the script's reply for key (a stop script's string or
	// integer, a start script's array) or an error.
	reply    any
	err      error
	logCmd   *redis.Cmd
	entryErr error // a logged script's error for the entry
	done     chan struct{}
}

// logErr is the error of the caller's log entry, wherever it was written;
// nil when it was written (or there was none).
func (c *call) logErr() error {
	if c.logCmd != nil {
		return c.logCmd.Err()
	}
	return c.entryErr
}

// result is the script's reply for the caller's record, an array (the
// start scripts).
func (c *call) result() ([]any, error) {
	v, err := c.value()
	if err != nil {
		return nil, err
	}
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("script reply: unexpected %T", v)
	}
	return a, nil
}

// value is the script's reply for the caller's record, whatever its type
// (the stop scripts reply with a string or an integer).
func (c *call) value() (any, error) {
	if c.err != nil {
		return nil, c.err
	}
	if err, ok := c.reply.(error); ok {
		return nil, err
	}
	return c.reply, nil
}

// maxBatch bounds the calls of one pipeline.
const maxBatch = 512

// do queues c and returns once it has been executed; the caller then reads
// c.result and c.logCmd.
func (b *batcher) do(ctx context.Context, c *call) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.done == nil {
		c.done = make(chan struct{}, 1)
	}
	b.mu.Lock()
	b.queue = append(b.queue, c)
	if !b.running {
		b.running = true
		go b.loop()
	}
	b.mu.Unlock()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loop sends what is queued until the queue is empty, then exits.
func (b *batcher) loop() {
	// Let the goroutines already runnable (workers of the same read, about
	// to call too) queue theirs before the first batch leaves
	// (TestCallersAlreadyRunnableLeaveTogether).
	runtime.Gosched()
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxBatch)
		if n == 0 {
			b.running = false
			b.queue = nil
			b.mu.Unlock()
			return
		}
		batch := make([]*call, n)
		copy(batch, b.queue)
		b.queue = b.queue[:copy(b.queue, b.queue[n:])]
		b.mu.Unlock()

		b.send(batch)
		for _, c := range batch {
			c.done <- struct{}{}
		}
	}
}

// scriptGroup is the calls one script call serves.
type scriptGroup struct {
	script *script
	shard  int
	calls  []*call
	args   []any
	cmd    *redis.Cmd
}

// command is the whole EVALSHA of the group, built at its final size
// (go-redis's EvalSha would copy every argument once more). A logged
// script gets the shard's log first and, per record, its arguments, the
// count of its entry's values and those values (logged.go).
func (g *scriptGroup) command(maxLen any) []any {
	if g.script.logged {
		return g.loggedCommand(maxLen)
	}
	n := 0
	for _, c := range g.calls {
		n += len(c.args)
	}
	cmd := make([]any, 0, 3+len(g.calls)+n)
	cmd = append(cmd, "evalsha", g.script.Hash(), len(g.calls))
	for _, c := range g.calls {
		cmd = append(cmd, &c.key) // a pointer: no allocation (args.go)
	}
	for _, c := range g.calls {
		cmd = append(cmd, c.args...)
	}
	return cmd
}

// send runs one batch as one pipeline.
func (b *batcher) send(batch []*call) {
	// The callers' own contexts only bound their waiting; the socket
	// timeouts of the client bound the pipeline.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var groups []*scriptGroup
	for _, c := range batch {
		if c.script == nil {
			continue
		}
		var g *scriptGroup
		if b.merge {
			for _, x := range groups {
				if x.script == c.script && x.shard == c.shard {
					g = x
				}
			}
		}
		if g == nil {
			g = &scriptGroup{script: c.script, shard: c.shard}
			groups = append(groups, g)
		}
		g.calls = append(g.calls, c)
	}
	p := b.c.Pipeline()
	for _, g := range groups {
		g.args = g.command(b.maxLen)
		g.cmd = p.Do(ctx, g.args...)
	}
	for _, c := range batch {
		if c.log != nil {
			c.logCmd = p.Do(ctx, c.log...)
		}
	}
	_, _ = p.Exec(ctx) // each command's error is read below
	for _, g := range groups {
		v, err := redisclient.EvalIfNoScript(ctx, b.c, g.cmd, g.args, g.script.src).Slice()
		if err == nil && len(v) != len(g.calls) {
			err = fmt.Errorf("script reply: %d replies for %d records", len(v), len(g.calls))
		}
		for i, c := range g.calls {
			switch {
			case err != nil:
				c.err = err
			case g.script.logged:
				c.reply, c.entryErr = splitLogged(v[i])
			default:
				c.reply = v[i]
			}
		}
	}
}
