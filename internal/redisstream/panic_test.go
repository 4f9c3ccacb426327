package redisstream_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/testredis"
)

// A handler that panics on one job does not take the process down: the job
// is retried MaxDeliveries times and dead-lettered with the panic's text
// and stack, and the other jobs are answered meanwhile.
func TestHandlerPanicIsRetriedThenDeadLettered(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.MaxDeliveries = 3
	var panics atomic.Int32
	startApp(t, rdb, opts, 2, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		if msg.Payload.GameId == "gp" {
			panics.Add(1)
			// Published before the panic: dropped with the failed delivery.
			// assert, not require: this runs in the broker's goroutine.
			if err := answer(ctx, c, msg); !assert.NoError(t, err) {
				return err
			}
			panic("boom in the runtime driver")
		}
		return answer(ctx, c, msg)
	})
	var good []string
	for i := 0; i < 10; i++ {
		good = append(good, addJob(t, rdb, "game_id", fmt.Sprintf("g%d", i), "reason", "game_finished"))
	}
	pid := addJob(t, rdb, "game_id", "gp", "reason", "game_finished")
	for i := 10; i < 20; i++ {
		good = append(good, addJob(t, rdb, "game_id", fmt.Sprintf("g%d", i), "reason", "game_finished"))
	}
	waitLen(t, rdb, dead, 1)
	waitSettled(t, rdb)

	dl := streamEntries(t, rdb, dead)
	require.Len(t, dl, 1)
	v := dl[0].Values
	assert.Equal(t, pid, v["original_id"])
	assert.Equal(t, "max_deliveries", v["dead_reason"])
	assert.Equal(t, "3", v["delivery_count"])
	assert.Contains(t, v["dead_error"], "handler panic: boom in the runtime driver")
	assert.Contains(t, v["dead_error"], "panic_test.go", "the stack is kept")
	assert.Equal(t, int32(3), panics.Load())

	byJob := resultsByJob(t, rdb)
	assert.Zero(t, byJob[pid], "what the handler published before panicking is dropped")
	for _, id := range good {
		assert.Equal(t, 1, byJob[id], "job %s", id)
	}
}
