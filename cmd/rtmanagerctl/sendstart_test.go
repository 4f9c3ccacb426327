package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/testredis"
)

func TestSendStart(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()

	o := cli(t, srv.URL(), "send-start", " g1 ", "--engine", "demo", "--requested-at-ms", "1764160000000")
	requireOK(t, o)
	id := strings.TrimSpace(o.stdout)
	o = cli(t, srv.URL(), "send-start", "--raw", "g2", "--engine", "../../bin/sh")
	requireOK(t, o)
	for _, bad := range [][]string{
		{"send-start", "g1"},
		{"send-start", "g1", "--engine", "../../bin/sh"},
		{"send-start", "g1", "--engine", "Chess"},
		{"send-start", "g 1", "--engine", "demo"},
	} {
		o := cli(t, srv.URL(), bad...)
		assert.Equal(t, 2, o.code, "%v: %s", bad, o.stderr)
	}
	msgs, err := c.XRange(tctx(t), startJobsKey, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	assert.Equal(t, id, msgs[0].ID)
	assert.Equal(t, map[string]any{"game_id": "g1", "engine": "demo", "requested_at_ms": "1764160000000"}, msgs[0].Values)
	assert.Equal(t, map[string]any{"game_id": "g2", "engine": "../../bin/sh"}, msgs[1].Values)
}

// --wait prints the start's result; status shows the profile.
func TestSendStartWaitAndStatus(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		res, err := c.XRead(ctx, &redis.XReadArgs{Streams: []string{startJobsKey, "0-0"}, Count: 1, Block: 15 * time.Second}).Result()
		if err != nil {
			return
		}
		job := res[0].Messages[0]
		_ = c.HSet(ctx, "rtmanager:runtime:{g1}", "status", "running", "engine", "demo", "runtime", "process",
			"container_id", "pid:42:start:7", "engine_endpoint", "127.0.0.1:40001", "updated_at_ms", "1",
			"last_start_job_id", job.ID, "last_start_result", `{"outcome":"success","error_code":"","error_message":"","container_id":"pid:42:start:7","engine_endpoint":"127.0.0.1:40001"}`).Err()
		_ = c.XAdd(ctx, &redis.XAddArgs{Stream: resultsKey, Values: []any{
			"job_id", job.ID, "game_id", "g1", "operation", "start", "outcome", "success",
			"error_code", "", "error_message", "", "container_id", "pid:42:start:7", "engine_endpoint", "127.0.0.1:40001",
			"completed_at_ms", "5",
		}}).Err()
	}()
	o := cli(t, srv.URL(), "--json", "send-start", "g1", "--engine", "demo", "--wait", "--wait-timeout", "15s")
	requireOK(t, o)
	v := decode[sendView](t, o.stdout)
	require.NotNil(t, v.Result)
	assert.Equal(t, "start", v.Result.Operation)
	assert.Equal(t, "127.0.0.1:40001", v.Result.EngineEndpoint)

	o = cli(t, srv.URL(), "status", "g1")
	requireOK(t, o)
	assert.Regexp(t, `(?m)^engine\s+demo$`, o.stdout)
	assert.Regexp(t, `(?m)^last_start_job_id\s+`+v.JobID+`$`, o.stdout)
	o = cli(t, srv.URL(), "--json", "status", "g1")
	requireOK(t, o)
	rv := decode[recordView](t, o.stdout)
	assert.Equal(t, "demo", rv.Engine)
	require.NotNil(t, rv.LastStartResult)
	assert.Equal(t, "pid:42:start:7", rv.LastStartResult.ContainerID)
}
