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

// The raw reply reads as go-redis's XReadGroup reads it, over RESP2 and
// RESP3: entries deleted since they were read (nil fields), an empty
// field value, and an error reply (NOGROUP, as go-redis returns it).
func TestReadGroupRawMatchesGoRedis(t *testing.T) {
	srv := testredis.Start(t)
	for _, proto := range []int{3, 2} {
		t.Run(fmt.Sprintf("resp%d", proto), func(t *testing.T) {
			rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), Protocol: proto})
			t.Cleanup(func() { _ = rdb.Close() })
			ctx := context.Background()
			stream := fmt.Sprintf("match%d", proto)
			var ids []string
			for i := 0; i < 5; i++ {
				id, err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []string{"game_id", fmt.Sprintf("g%d", i), "reason", "", "n", "é\r\n"}}).Result()
				require.NoError(t, err)
				ids = append(ids, id)
			}
			require.NoError(t, rdb.XGroupCreate(ctx, stream, "g", "0").Err())
			args := func(from string) *redis.XReadGroupArgs {
				return &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{stream, from}, Count: 10, Block: 100 * time.Millisecond}
			}
			raw, dups, err := readGroupRaw(ctx, rdb, args(">"))
			require.NoError(t, err)
			assert.Empty(t, dups)
			want, err := rdb.XReadGroup(ctx, args("0")).Result()
			require.NoError(t, err)
			assert.Equal(t, want, raw)

			// History after deletes: nil fields.
			require.NoError(t, rdb.XDel(ctx, stream, ids[1], ids[3]).Err())
			raw, _, err = readGroupRaw(ctx, rdb, args("0"))
			require.NoError(t, err)
			want, err = rdb.XReadGroup(ctx, args("0")).Result()
			require.NoError(t, err)
			assert.Equal(t, want, raw)
			require.Len(t, raw[0].Messages, 5)
			assert.Nil(t, raw[0].Messages[1].Values)

			_, _, err = readGroupRaw(ctx, rdb, &redis.XReadGroupArgs{Group: "nogroup", Consumer: "c", Streams: []string{stream, ">"}, Count: 10, Block: 100 * time.Millisecond})
			require.Error(t, err)
			assert.True(t, isNoGroup(err), "%v", err)
			var re redis.Error
			assert.ErrorAs(t, err, &re, "a Redis error, as go-redis returns it")
		})
	}
}

// Reading costs a few allocations per entry (one string for the entry, its
// fields map and the values' interface boxes), not two per string of the
// reply as go-redis's generic reader does.
func TestReadGroupRawAllocationsPerEntry(t *testing.T) {
	srv := testredis.Start(t)
	rdb := srv.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	const n = 200
	for i := 0; i < n; i++ {
		require.NoError(t, rdb.XAdd(ctx, &redis.XAddArgs{Stream: "s", Values: []string{"game_id", fmt.Sprintf("g%d", i), "reason", "game_finished", "requested_at_ms", "1764160000000"}}).Err())
	}
	require.NoError(t, rdb.XGroupCreate(ctx, "s", "g", "0").Err())
	require.NoError(t, rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"s", ">"}, Count: n}).Err())
	a := &redis.XReadGroupArgs{Group: "g", Consumer: "c", Streams: []string{"s", "0"}, Count: n, Block: -1}
	allocs := testing.AllocsPerRun(10, func() {
		res, _, err := readGroupRaw(ctx, rdb, a)
		if err != nil || len(res) != 1 || len(res[0].Messages) != n {
			t.Fatalf("read: %v", err)
		}
	})
	assert.Less(t, allocs/n, 8.0, "%.0f allocations for %d entries", allocs, n)
}

// A damaged reply is an error, never a panic or a huge allocation.
func FuzzParseReadRaw(f *testing.F) {
	f.Add([]byte("*1\r\n*2\r\n$1\r\ns\r\n*1\r\n*2\r\n$3\r\n1-1\r\n*4\r\n$7\r\ngame_id\r\n$2\r\ng1\r\n$6\r\nreason\r\n$0\r\n\r\n"))
	f.Add([]byte("%1\r\n$1\r\ns\r\n*2\r\n*2\r\n$3\r\n1-1\r\n*-1\r\n*2\r\n+1-2\r\n*2\r\n$1\r\na\r\n_\r\n"))
	f.Add([]byte("*-1\r\n"))
	f.Add([]byte("_\r\n"))
	f.Add([]byte("-NOGROUP No such key\r\n"))
	f.Add([]byte("*1\r\n*2\r\n$1\r\ns\r\n*99999999999\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseReadRaw(b)
	})
}
