package main

import (
	"context"
	"fmt"
	"time"
)

// pace is what both producers share: entries 0..n-1 in batches of batch at
// about rate per second (0: as fast as they go), each batch written by
// write, which returns the indexes to write again; those are retried after
// a backoff (20ms doubling to 500ms, retry called first) until timeout. A
// close of stop ends it after the current batch. It returns how long it
// took.
func pace(ctx context.Context, n, rate, batch int, timeout time.Duration, stop <-chan struct{}, write func(todo []int) (again []int), retry func()) (time.Duration, error) {
	t0 := time.Now()
	deadline := t0.Add(timeout)
	for from := 0; from < n; from += batch {
		select {
		case <-stop:
			return time.Since(t0), nil
		default:
		}
		todo := make([]int, 0, batch)
		for i := from; i < min(from+batch, n); i++ {
			todo = append(todo, i)
		}
		backoff := 20 * time.Millisecond
		for len(todo) > 0 {
			if ctx.Err() != nil {
				return time.Since(t0), ctx.Err()
			}
			if time.Now().After(deadline) {
				return time.Since(t0), fmt.Errorf("produce: %d entries not written within %s", n-from, timeout)
			}
			todo = write(todo)
			if len(todo) > 0 {
				retry()
				time.Sleep(backoff)
				backoff = min(2*backoff, 500*time.Millisecond)
			}
		}
		if rate > 0 {
			if d := time.Until(t0.Add(time.Duration(from+batch) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d)
			}
		}
	}
	return time.Since(t0), nil
}
