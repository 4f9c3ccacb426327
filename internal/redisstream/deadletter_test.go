package redisstream_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

func TestUndecodableEntryIsDeadLetteredAndCanBeAnswered(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	seen := make(chan string, 1)
	startApp(t, rdb, fastOptions(), 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		seen <- d.Dead() + "|" + string(msg.Payload.GameId)
		return answer(ctx, c, msg)
	})
	addJob(t, rdb, "game_id", "g1", "reason", "game_finished", "requested_at_ms", "yesterday")
	waitLen(t, rdb, dead, 1)
	assert.Equal(t, "undecodable|g1", <-seen, "the handler sees what could be read and why it is dead")
	dl := streamEntries(t, rdb, dead)[0].Values
	assert.Equal(t, "undecodable", dl["dead_reason"])
	assert.Contains(t, dl["dead_error"], "requested_at_ms")
	assert.Equal(t, "yesterday", dl["requested_at_ms"])
	assert.Len(t, streamEntries(t, rdb, results), 1, "answer and dead letter in one step")
	assert.Zero(t, pendingCount(t, rdb))
}

func TestUndecodableEntryIsDeadLetteredEvenIfHandlerFails(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	startApp(t, rdb, fastOptions(), 1, func(context.Context, *runtimejobs.AppController, runtimejobs.RuntimeStopJobMessage) error {
		return errors.New("cannot handle")
	})
	addJob(t, rdb, "game_id", "g\xff", "reason", "game_finished")
	waitLen(t, rdb, dead, 1)
	assert.Equal(t, "g\xff", streamEntries(t, rdb, dead)[0].Values["game_id"], "bytes are kept verbatim")
	assert.Zero(t, pendingCount(t, rdb))
}

func TestHandlerCanDeadLetterAnInvalidJob(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	startApp(t, rdb, fastOptions(), 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		d, _ := redisstream.DeliveryFrom(ctx)
		d.DeadLetter(redisstream.DeadInvalid, "reason: unknown")
		return answer(ctx, c, msg)
	})
	addJob(t, rdb, "game_id", "g1", "reason", "vacation")
	waitLen(t, rdb, dead, 1)
	assert.Equal(t, "invalid", streamEntries(t, rdb, dead)[0].Values["dead_reason"])
	assert.Len(t, streamEntries(t, rdb, results), 1)
}
