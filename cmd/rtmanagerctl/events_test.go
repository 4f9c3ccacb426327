package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/runtimes"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/runtimewatch"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// exitedInspector says every runtime ended with code 137.
type exitedInspector struct{}

func (exitedInspector) Inspect(context.Context, string) (runtimes.State, error) {
	code := int64(137)
	return runtimes.State{ExitCode: &code, Reason: "killed by signal 9"}, nil
}

// events and status show what the runtime watch wrote (by the watch
// itself, so the wire is rtmanager's).
func TestEventsAndStatusAfterAnExit(t *testing.T) {
	srv := testredis.Start(t)
	c := srv.Client()
	defer c.Close()
	store := runtimestore.New(c, runtimestore.Options{})
	_, err := store.Register(context.Background(), stopruntime.Record{GameID: "g1", Status: "running", ContainerID: "pid:1234:start:5", Runtime: "process"})
	require.NoError(t, err)
	doc, err := api.Load()
	require.NoError(t, err)
	ch, _ := doc.ChannelByAddress(eventsKey)
	w, err := runtimewatch.New(store, runtimewatch.Options{Drivers: map[string]runtimewatch.Inspector{"process": exitedInspector{}},
		Events: ch, ProbeInterval: -1})
	require.NoError(t, err)
	w.Start()
	require.Eventually(t, func() bool { return c.XLen(context.Background(), eventsKey).Val() == 1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, w.Close(context.Background()))

	o := cli(t, srv.URL(), "events", "--json")
	requireOK(t, o)
	ev := decode[eventView](t, strings.TrimSpace(o.stdout))
	assert.Empty(t, ev.Err)
	assert.Equal(t, "g1", string(ev.GameId))
	assert.Equal(t, "engine_exited", ev.Type)
	require.NotNil(t, ev.ExitCode)
	assert.Equal(t, int64(137), *ev.ExitCode)

	o = cli(t, srv.URL(), "events")
	requireOK(t, o)
	lines := strings.Split(strings.TrimSpace(o.stdout), "\n")
	require.Len(t, lines, 2)
	assert.Regexp(t, `^ID\s+GAME\s+TYPE`, lines[0])
	assert.Regexp(t, `g1\s+engine_exited\s+running → exited\s+137\s+pid:1234:start:5`, lines[1])

	o = cli(t, srv.URL(), "status", "g1")
	requireOK(t, o)
	assert.Regexp(t, `(?m)^status\s+exited$`, o.stdout)
	assert.Regexp(t, `(?m)^exit_code\s+137$`, o.stdout)
	assert.Regexp(t, `(?m)^failure_reason\s+killed by signal 9$`, o.stdout)
}
