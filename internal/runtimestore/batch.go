package runtimestore

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// batcher pipelines the commands of concurrent callers: while one pipeline
// is on the wire, calls queue up and leave together in the next one. With
// many workers (rtmanager runs one per controller) that turns N round trips,
// N write and N read syscalls on both sides into one each, which is most of
// what a stop costs Redis. A lone caller goes out at once, as before.
//
// Each call's commands keep their own semantics (a script is atomic on its
// own, a caller's commands stay in order and contiguous); only the transport
// is shared. A caller whose context ends stops waiting, like a cancelled
// call on a connection: the commands may still have run.
type batcher struct {
	c redis.UniversalClient

	mu      sync.Mutex
	queue   []*pcall
	running bool
}

type pcall struct {
	add  func(p redis.Pipeliner)
	done chan struct{}
}

// maxBatch bounds the calls of one pipeline.
const maxBatch = 512

// do queues add (which puts the caller's commands on the pipeline) and
// returns once they have been executed; the caller reads its commands'
// results and errors as with a pipeline of its own.
func (b *batcher) do(ctx context.Context, add func(p redis.Pipeliner)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &pcall{add: add, done: make(chan struct{})}
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
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxBatch)
		if n == 0 {
			b.running = false
			b.queue = nil
			b.mu.Unlock()
			return
		}
		batch := make([]*pcall, n)
		copy(batch, b.queue)
		b.queue = b.queue[:copy(b.queue, b.queue[n:])]
		b.mu.Unlock()

		// The callers' own contexts only bound their waiting; the socket
		// timeouts of the client bound the pipeline.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		p := b.c.Pipeline()
		for _, c := range batch {
			c.add(p)
		}
		_, _ = p.Exec(ctx) // each caller reads its own commands' errors
		cancel()
		for _, c := range batch {
			close(c.done)
		}
	}
}
