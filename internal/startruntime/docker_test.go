package startruntime_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/engines"
	"galaxy/rtmanager/internal/runtimes/docker"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/startruntime"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testengine"
	"galaxy/rtmanager/internal/testredis"
)

func TestMain(m *testing.M) { testengine.Main(m) }

// Docker profiles on the real engine: a crashed attempt's container is
// adopted, not doubled; a stop then stops it; the next start removes the
// stopped container and makes one new one.
func TestDockerStartAdoptsAndStops(t *testing.T) {
	e := testengine.Require(t)
	d, err := docker.New(docker.Options{Host: e.Host()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = d.Close() })
	srv := testredis.Start(t)
	rdb := srv.Client()
	t.Cleanup(func() { rdb.Close() })
	store := runtimestore.New(rdb, runtimestore.Options{})
	profiles, err := engines.New(engines.Profile{Name: "chess", Runtime: "docker", Image: e.Image(), Port: 7000,
		Env: map[string]string{"ENGINE_ADDR": "0.0.0.0:7000"}})
	require.NoError(t, err)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := startruntime.New(store, profiles, map[string]startruntime.Driver{"docker": startruntime.Docker{D: d}},
		startruntime.Options{StartTimeout: 30 * time.Second, Logger: quiet})
	require.NoError(t, err)
	stop, err := stopruntime.New(store, map[string]stopruntime.Driver{"docker": d}, stopruntime.Options{StopGrace: 2 * time.Second, Logger: quiet})
	require.NoError(t, err)
	ctx := context.Background()
	const game = "g-docker-start"
	t.Cleanup(func() {
		f, _ := d.Find(context.Background(), game)
		for _, c := range f {
			_ = d.Remove(context.Background(), c.ID)
		}
	})

	// The crashed attempt: the record says starting, the container exists.
	_, _, _, err = store.BeginStart(ctx, game, "1-0", "chess", time.Now().UnixMilli(), time.Minute.Milliseconds())
	require.NoError(t, err)
	crashed, err := d.Start(ctx, docker.StartSpec{GameID: game, JobID: "1-0", Image: e.Image(), Port: 7000, Env: map[string]string{"ENGINE_ADDR": "0.0.0.0:7000"}})
	require.NoError(t, err)

	res, err := svc.Handle(ctx, startruntime.Input{GameID: game, Engine: "chess", JobID: "1-0"})
	require.NoError(t, err)
	require.Equal(t, stopruntime.OutcomeSuccess, res.Outcome, res.ErrorMessage)
	assert.Equal(t, crashed.ID, res.Record.ContainerID)
	assert.Equal(t, crashed.Endpoint, res.Record.EngineEndpoint)
	found, err := d.Find(ctx, game)
	require.NoError(t, err)
	assert.Len(t, found, 1)

	st, err := stop.Handle(ctx, stopruntime.Input{GameID: game, Reason: "game_finished", OpSource: stopruntime.OpSourceLobbyStream, SourceRef: "1-0"})
	require.NoError(t, err)
	assert.Equal(t, stopruntime.OutcomeSuccess, st.Outcome)
	state, err := e.State(ctx, crashed.ID)
	require.NoError(t, err)
	assert.False(t, state.Running)

	res2, err := svc.Handle(ctx, startruntime.Input{GameID: game, Engine: "chess", JobID: "2-0"})
	require.NoError(t, err)
	require.Equal(t, stopruntime.OutcomeSuccess, res2.Outcome, res2.ErrorMessage)
	found, err = d.Find(ctx, game)
	require.NoError(t, err)
	require.Len(t, found, 1, "the stopped container was removed, one new one made")
	assert.Equal(t, res2.Record.ContainerID, found[0].ID)
}
