package redisstream_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

func TestNakIsRedeliveredWithBackoff(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	var calls atomic.Int32
	counts := make(chan int64, 4)
	startApp(t, rdb, fastOptions(), 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		counts <- d.Count()
		if calls.Add(1) == 1 {
			// Publishes, then fails: nothing of this attempt may be written.
			// assert, not require: this runs in the broker's goroutine.
			if err := answer(ctx, c, msg); !assert.NoError(t, err) {
				return err
			}
			return errors.New("transient")
		}
		return answer(ctx, c, msg)
	})
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	waitLen(t, rdb, results, 1)
	time.Sleep(200 * time.Millisecond)
	assert.Len(t, streamEntries(t, rdb, results), 1, "the failed attempt's publication was dropped")
	assert.Equal(t, int64(1), <-counts)
	assert.Equal(t, int64(2), <-counts)
	assert.Zero(t, pendingCount(t, rdb))
}

func TestMaxDeliveriesDeadLettersAndAcks(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.MaxDeliveries = 3
	var calls atomic.Int32
	startApp(t, rdb, opts, 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		calls.Add(1)
		// assert, not require: this runs in the broker's goroutine.
		if err := answer(ctx, c, msg); !assert.NoError(t, err) {
			return err
		}
		return errors.New("runtime unreachable")
	})
	id := addJob(t, rdb, "game_id", "g1", "reason", "game_finished", "dead_reason", "spoof")
	waitLen(t, rdb, dead, 1)
	dl := streamEntries(t, rdb, dead)[0].Values
	assert.Equal(t, "max_deliveries", dl["dead_reason"])
	assert.Equal(t, id, dl["original_id"])
	assert.Equal(t, "3", dl["delivery_count"])
	assert.Contains(t, dl["dead_error"], "runtime unreachable")
	assert.Equal(t, "g1", dl["game_id"], "original fields are kept")
	assert.Equal(t, "spoof", dl["original.dead_reason"], "a colliding original field is renamed")
	assert.Equal(t, int32(3), calls.Load())
	assert.Zero(t, pendingCount(t, rdb))
	assert.Empty(t, streamEntries(t, rdb, results), "a handler that failed publishes nothing")
}
