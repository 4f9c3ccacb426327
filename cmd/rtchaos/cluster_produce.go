package main

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// waitedProd is what produceWaited did.
type waitedProd struct {
	ids  []string // entry id of each job a replica confirmed; "" if none
	keys []string // the job stream each job went to

	// Written counts jobs whose write a replica confirmed.
	written int
	// xaddRetries counts XADDs repeated after an error (a master away, a
	// stale slot map).
	xaddRetries int
	// unconfirmed counts XADDs a master acknowledged that WAIT never
	// confirmed on a replica (the master died first, or none came in
	// time): each was written again as a new entry (the first may survive
	// too: then it is one more job with its own result).
	unconfirmed int
	took        time.Duration
}

// produceWaited appends entries[i] to keys[i] at about rate per second, in
// batches, as Lobby would on a Redis Cluster where a write must survive
// the loss of its master: the XADDs for one master go in one pipeline on
// one connection followed by WAIT 1, and count as written only when WAIT
// says a replica has them (asked again for up to confirmFor). A master acknowledges an XADD
// before its replica has it, so without WAIT a master killed just after
// takes acknowledged jobs with it: lost by Redis, not by rtmanager.
//
// A close of stop ends it after the current batch (nil: write them all).
func produceWaited(ctx context.Context, cc *redis.ClusterClient, keys []string, entries [][]string, rate, batch int, confirmFor, timeout time.Duration, stop <-chan struct{}) (waitedProd, error) {
	st := waitedProd{ids: make([]string, len(entries)), keys: keys}
	var err error
	st.took, err = pace(ctx, len(entries), rate, batch, timeout, stop,
		func(todo []int) []int { return st.writeOnce(ctx, cc, entries, todo, confirmFor) },
		// A master is away or moved: read the slot map again.
		func() { cc.ReloadState(ctx) })
	return st, err
}

// writeOnce writes the entries todo names, one pipeline per master, and
// returns those to write again.
func (st *waitedProd) writeOnce(ctx context.Context, cc *redis.ClusterClient, entries [][]string, todo []int, confirmFor time.Duration) []int {
	var again []int
	byNode := map[*redis.Client][]int{}
	var order []*redis.Client
	for _, i := range todo {
		node, err := cc.MasterForKey(ctx, st.keys[i])
		if err != nil {
			st.xaddRetries++
			again = append(again, i)
			continue
		}
		if _, ok := byNode[node]; !ok {
			order = append(order, node)
		}
		byNode[node] = append(byNode[node], i)
	}
	// The masters are written at once: each waits for its own replica.
	outs := make([]nodeWrite, len(order))
	var wg sync.WaitGroup
	for k, node := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outs[k] = writeNode(ctx, node, st.keys, entries, byNode[node], confirmFor)
		}()
	}
	wg.Wait()
	for _, o := range outs {
		for i, id := range o.ids {
			st.ids[i] = id
		}
		st.written += len(o.ids)
		st.xaddRetries += o.xaddRetries
		st.unconfirmed += o.unconfirmed
		again = append(again, o.again...)
	}
	return again
}

// nodeWrite is what writeNode did on one master.
type nodeWrite struct {
	ids                      map[int]string // confirmed entries' ids by job
	again                    []int
	xaddRetries, unconfirmed int
}

// writeNode writes the entries idx names on one master, pipelined on one
// connection and followed by WAIT 1: WAIT covers the writes made on its own
// connection. While no replica has confirmed them (none may be attached:
// after a failover the promoted master has none until the old one rejoins),
// it asks again on the same connection for up to confirmFor, rather than
// write them again; it returns the entries to write again: those that got
// an error, or were never confirmed.
func writeNode(ctx context.Context, node *redis.Client, keys []string, entries [][]string, idx []int, confirmFor time.Duration) nodeWrite {
	conn := node.Conn()
	defer conn.Close()
	pipe := conn.Pipeline()
	cmds := make([]*redis.StringCmd, len(idx))
	for k, i := range idx {
		cmds[k] = pipe.XAdd(ctx, &redis.XAddArgs{Stream: keys[i], Values: entries[i]})
	}
	wait := pipe.Do(ctx, "WAIT", 1, waitStep.Milliseconds())
	_, _ = pipe.Exec(ctx)
	replicas, err := wait.Int64()
	for t0 := time.Now(); err == nil && replicas < 1 && time.Since(t0) < confirmFor; {
		replicas, err = conn.Do(ctx, "WAIT", 1, waitStep.Milliseconds()).Int64()
	}
	confirmed := err == nil && replicas >= 1
	out := nodeWrite{ids: map[int]string{}}
	for k, i := range idx {
		switch {
		case cmds[k].Err() != nil:
			out.xaddRetries++
			out.again = append(out.again, i)
		case !confirmed:
			out.unconfirmed++
			out.again = append(out.again, i)
		default:
			out.ids[i] = cmds[k].Val()
		}
	}
	return out
}

// waitStep is the timeout of one WAIT: short, so a connection to a master
// that died is noticed soon.
const waitStep = 500 * time.Millisecond
