package redisstream

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

// Entries naming a field twice are told apart from the map go-redis builds
// (where the last value silently wins), over RESP3 and RESP2; ordinary
// entries read exactly as XReadGroup reads them.
func TestReadGroupRawFindsDuplicateFields(t *testing.T) {
	srv := testredis.Start(t)
	for _, proto := range []int{3, 2} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: proto})
			t.Cleanup(func() { _ = rdb.Close() })
			ctx := context.Background()
			stream := fmt.Sprintf("dups%d", proto)
			add := func(fields ...any) string {
				id, err := rdb.Do(ctx, append([]any{"xadd", stream, "*"}, fields...)...).Text()
				require.NoError(t, err)
				return id
			}
			okID := add("game_id", "g1", "reason", "game_finished")
			twoID := add("game_id", "g2", "reason", "game_finished", "game_id", "g3")
			sameID := add("game_id", "g4", "reason", "game_finished", "game_id", "g4", "game_id", "g4")
			for _, g := range []string{"lossy", "raw"} {
				require.NoError(t, rdb.XGroupCreate(ctx, stream, g, "0").Err())
			}

			lossy, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "lossy", Consumer: "c", Streams: []string{stream, ">"}, Count: 10}).Result()
			require.NoError(t, err)
			assert.Equal(t, "g3", lossy[0].Messages[1].Values["game_id"], "go-redis keeps the last value only")

			raw, dups, err := readGroupRaw(ctx, rdb, &redis.XReadGroupArgs{Group: "raw", Consumer: "c", Streams: []string{stream, ">"}, Count: 10, Block: 100 * time.Millisecond})
			require.NoError(t, err)
			require.Len(t, raw, 1)
			assert.Equal(t, stream, raw[0].Stream)
			assert.Equal(t, lossy[0].Messages, raw[0].Messages, "the same messages as XReadGroup")
			assert.Equal(t, entryDups{
				twoID:  {{name: "game_id", n: 2, differ: true}},
				sameID: {{name: "game_id", n: 3}},
			}, dups)
			assert.NotContains(t, dups, okID)

			_, _, err = readGroupRaw(ctx, rdb, &redis.XReadGroupArgs{Group: "raw", Consumer: "c", Streams: []string{stream, ">"}, Count: 10, Block: 50 * time.Millisecond})
			assert.ErrorIs(t, err, redis.Nil, "an empty block is redis.Nil: %v", err)
		})
	}
}

// Claimed entries are told apart the same way.
func TestAutoClaimRawFindsDuplicateFields(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	okID, err := rdb.Do(ctx, "xadd", "s", "*", "game_id", "g1", "reason", "game_finished").Text()
	require.NoError(t, err)
	dupID, err := rdb.Do(ctx, "xadd", "s", "*", "game_id", "g2", "game_id", "g3", "reason", "game_finished").Text()
	require.NoError(t, err)
	require.NoError(t, rdb.XGroupCreate(ctx, "s", "g", "0").Err())
	require.NoError(t, rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "dead", Streams: []string{"s", ">"}, Count: 10}).Err())

	msgs, next, dups, err := autoClaimRaw(ctx, rdb, &redis.XAutoClaimArgs{Stream: "s", Group: "g", Consumer: "live", Start: "0-0", Count: 10})
	require.NoError(t, err)
	assert.Equal(t, "0-0", next)
	require.Len(t, msgs, 2)
	assert.Equal(t, okID, msgs[0].ID)
	assert.Equal(t, map[string]any{"game_id": "g1", "reason": "game_finished"}, msgs[0].Values)
	assert.Equal(t, entryDups{dupID: {{name: "game_id", n: 2, differ: true}}}, dups)
}

// An entry with a field named twice is undecodable; when the values
// differ, the field is left out (no game id to answer by), else kept.
func TestDecodeDupsIsUndecodable(t *testing.T) {
	c := contractCodec(t, "runtime:stop_jobs")
	values := map[string]any{"game_id": "g3", "reason": "game_finished"}

	d := c.decodeDups(values, []fieldDup{{name: "game_id", n: 2, differ: true}})
	require.NotNil(t, d.err)
	assert.Equal(t, "game_id", d.err.Field)
	assert.Contains(t, d.err.Error(), "named 2 times with different values")
	assert.NotContains(t, string(d.payload), "g3", "no value of an ambiguous field is trusted")
	assert.Empty(t, d.key)
	assert.Equal(t, "g3", values["game_id"], "the entry's fields are not changed (the dead letter copies them)")

	d = c.decodeDups(values, []fieldDup{{name: "game_id", n: 3}})
	require.NotNil(t, d.err)
	assert.Contains(t, d.err.Error(), "named 3 times")
	assert.Contains(t, string(d.payload), `"game_id":"g3"`, "one value repeated is still readable")

	assert.Equal(t, c.decode(values), c.decodeDups(values, nil))
}

func BenchmarkReadGroup(b *testing.B) {
	srv := testredis.Start(b)
	rdb := srv.Client()
	defer rdb.Close()
	ctx := context.Background()
	for i := 0; i < 256; i++ {
		rdb.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []string{"game_id", fmt.Sprintf("g%d", i), "reason", "game_finished", "requested_at_ms", "1764160000000"}})
	}
	groups := 0
	for _, kind := range []string{"goredis", "raw"} {
		b.Run(kind, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				groups++
				g := fmt.Sprintf("g%d", groups)
				rdb.XGroupCreate(ctx, "s", g, "0")
				a := &redis.XReadGroupArgs{Group: g, Consumer: "c", Streams: []string{"s", ">"}, Count: 256, Block: -1}
				var err error
				if kind == "raw" {
					_, _, err = readGroupRaw(ctx, rdb, a)
				} else {
					_, err = rdb.XReadGroup(ctx, a).Result()
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
