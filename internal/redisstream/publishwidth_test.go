package redisstream_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/lerenn/asyncapi-codegen/pkg/extensions"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/testredis"
)

// A handler's publication too wide for the commit script is refused by
// Publish, so the handler fails and the entry is retried and dead-lettered
// like any failure, instead of a commit that can never succeed.
func TestPublishRefusesAMessageTooWideToCommit(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	opts := fastOptions()
	opts.MaxDeliveries = 2
	var a *app
	a = startApp(t, rdb, opts, 1, func(ctx context.Context, c *runtimejobs.AppController, msg runtimejobs.RuntimeStopJobMessage) error {
		if msg.Payload.GameId != "gwide" {
			return answer(ctx, c, msg)
		}
		h := map[string][]byte{}
		for i := 0; i < 4100; i++ {
			h[fmt.Sprintf("h%d", i)] = []byte("v")
		}
		return a.broker.Publish(ctx, "audit:wide", extensions.BrokerMessage{Payload: []byte("{}"), Headers: h})
	})
	id := addJob(t, rdb, "game_id", "gwide", "reason", "game_finished")
	ok := addJob(t, rdb, "game_id", "g1", "reason", "game_finished")
	waitLen(t, rdb, dead, 1)
	waitSettled(t, rdb)
	dl := streamEntries(t, rdb, dead)
	require.Len(t, dl, 1)
	assert.Equal(t, id, dl[0].Values["original_id"])
	assert.Contains(t, dl[0].Values["dead_error"], "more than the limit")
	n, _ := rdb.XLen(context.Background(), "audit:wide").Result()
	assert.Zero(t, n)
	assert.Equal(t, map[string]int{ok: 1}, resultsByJob(t, rdb))
}
