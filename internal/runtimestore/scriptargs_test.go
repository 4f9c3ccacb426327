package runtimestore

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

// Every stop script checks its arguments before its first write: a bad one
// is the record's error and the record stays as it was (Redis does not roll
// back a script that fails halfway).
func TestStopScriptsCheckArgumentsFirst(t *testing.T) {
	ctx := context.Background()
	c := testredis.Start(t).Client()
	t.Cleanup(func() { _ = c.Close() })
	key := "rtmanager:runtime:{g}"
	running := map[string]string{"status": "running", "container_id": "c", "updated_at_ms": "1"}
	stopping := map[string]string{"status": "stopping", "stopping_job_id": "1-0", "stopping_since_ms": "1"}
	reset := func(fields map[string]string) {
		t.Helper()
		require.NoError(t, c.Del(ctx, key).Err())
		require.NoError(t, c.HSet(ctx, key, fields).Err())
	}
	perRecord := func(src string, args ...any) error {
		t.Helper()
		v, err := c.Eval(ctx, src, []string{key}, args...).Slice()
		require.NoError(t, err)
		require.Len(t, v, 1)
		err, _ = v[0].(error)
		return err
	}
	unchanged := func(fields map[string]string, name string) {
		t.Helper()
		h, err := c.HGetAll(ctx, key).Result()
		require.NoError(t, err)
		assert.Equal(t, fields, h, name)
	}
	for name, args := range map[string][]any{
		"now not a number":      {"2-0", "soon", 1000},
		"takeover not a number": {"2-0", 5, "x"},
		"empty job":             {"", 5, 1000},
	} {
		reset(running)
		require.ErrorContains(t, perRecord(beginLua, args...), "begin stop: bad arguments", name)
		unchanged(running, name)
	}
	for name, args := range map[string][]any{
		"unknown status":   {"1-0", 5, "gone", `{"outcome":"success"}`},
		"now not a number": {"1-0", "x", "stopped", `{"outcome":"success"}`},
		"empty result":     {"1-0", 5, "stopped", ""},
		"empty job":        {"", 5, "stopped", `{"outcome":"success"}`},
	} {
		reset(stopping)
		require.ErrorContains(t, perRecord(finishLua, args...), "finish stop: bad arguments", name)
		unchanged(stopping, name)
	}
	reset(running)
	for name, args := range map[string][]any{
		"empty status":     {"", "c2", "e:2", "none", 5},
		"now not a number": {"running", "c2", "e:2", "none", "x"},
	} {
		err := redis.NewScript(registerLua).Run(ctx, c, []string{key}, args...).Err()
		require.ErrorContains(t, err, "register: bad arguments", name)
		unchanged(running, name)
	}
}
