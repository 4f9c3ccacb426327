package redisstream_test

import (
	"context"
	"testing"
	"time"

	"github.com/lerenn/asyncapi-codegen/pkg/extensions"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

// Middleware finds a message's delivery by the payload's backing array. Two
// entries held at once with empty payloads (Go gives every empty []byte
// conversion the same address) must still be told apart.
func TestMiddlewareTellsEmptyPayloadsApart(t *testing.T) {
	srv := testredis.Start(t)
	rdb := newClient(t, srv)
	const ch = "test:empty"
	opts := fastOptions()
	opts.Groups = map[string]string{ch: "g"}
	b, err := redisstream.New(rdb, opts)
	require.NoError(t, err)
	defer func() { _ = b.Close(context.Background()) }()
	ctx := context.Background()
	var ids []string
	for i := 0; i < 2; i++ {
		id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: ch, Values: []string{"payload", ""}}).Result()
		require.NoError(t, err)
		ids = append(ids, id)
	}
	// Two workers: both entries are handed out, and so held, at once.
	var msgs []extensions.AcknowledgeableBrokerMessage
	for i := 0; i < 2; i++ {
		sub, err := b.Subscribe(ctx, ch)
		require.NoError(t, err)
		defer sub.Cancel(ctx)
		select {
		case m := <-sub.MessagesChannel():
			msgs = append(msgs, m)
		case <-time.After(10 * time.Second):
			t.Fatal("no message")
		}
	}

	defer func() {
		for _, m := range msgs {
			m.Ack()
		}
	}()

	mw := b.Middleware()
	rctx := context.WithValue(ctx, extensions.ContextKeyIsDirection, "reception")
	got := map[string]bool{}
	for _, m := range msgs {
		require.NoError(t, mw(rctx, &m.BrokerMessage, func(ctx context.Context) error {
			d, ok := redisstream.DeliveryFrom(ctx)
			require.True(t, ok, "no delivery for a held entry")
			got[d.ID()] = true
			return nil
		}))
	}
	assert.Equal(t, map[string]bool{ids[0]: true, ids[1]: true}, got, "each message finds its own entry")
}
