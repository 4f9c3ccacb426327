package console

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/stopruntime"
)

// register writes a record through runtimestore, so the console's keys are
// held to the store's.
func register(t *testing.T, f *fixture, id, status string) {
	t.Helper()
	st := runtimestore.New(f.rdb, runtimestore.Options{})
	_, err := st.Register(context.Background(), stopruntime.Record{GameID: id, Status: status, ContainerID: "c-" + id, EngineEndpoint: "127.0.0.1:7000", Runtime: "none"})
	require.NoError(t, err)
}

func TestGamesListFiltersByStatus(t *testing.T) {
	f := newFixture(t, Options{})
	register(t, f, "g-run", "running")
	register(t, f, "g-fail", "failed")
	code, body := f.get("/games")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `href="/games/g-run"`)
	assert.Contains(t, body, `href="/games/g-fail"`)

	_, body = f.get("/games?status=failed")
	assert.NotContains(t, body, `href="/games/g-run"`)
	assert.Contains(t, body, `href="/games/g-fail"`)
}

func TestGamesListIsPagedBySCAN(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	p := f.rdb.Pipeline()
	const n = 3000
	for i := 0; i < n; i++ {
		p.HSet(ctx, f.c.keys.record(fmt.Sprintf("g-%04d", i)), "status", "running")
	}
	_, err := p.Exec(ctx)
	require.NoError(t, err)

	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, n, "the pages never end")
		rows, next, scanned, err := f.c.scanGames(ctx, parseCursor(t, cursor), "")
		require.NoError(t, err)
		assert.LessOrEqual(t, scanned, gamesScanCalls*gamesScanCount*2, "one page reads a bounded number of keys")
		for _, r := range rows {
			seen[r.GameID] = true
		}
		if next == 0 {
			break
		}
		cursor = fmt.Sprint(next)
	}
	assert.Len(t, seen, n)
}

func parseCursor(t *testing.T, s string) uint64 {
	if s == "" {
		return 0
	}
	var c uint64
	_, err := fmt.Sscan(s, &c)
	require.NoError(t, err)
	return c
}

func TestGamePageShowsRecordLastResultAndOperationLog(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	st := runtimestore.New(f.rdb, runtimestore.Options{})
	register(t, f, "g-7", "running")
	begin, err := st.BeginStop(ctx, stopruntime.BeginRequest{GameID: "g-7", JobID: "1764160000000-0", NowMS: 1, TakeoverMS: 1000})
	require.NoError(t, err)
	require.Equal(t, stopruntime.BeginStarted, begin.Verdict)
	_, err = st.FinishStop(ctx, stopruntime.FinishRequest{GameID: "g-7", JobID: "1764160000000-0", NowMS: 2, Status: "stopped",
		Result: stopruntime.StoredResult{Outcome: "success", ErrorMessage: "<i>done</i>", ContainerID: "c-g-7"}},
		stopruntime.Operation{GameID: "g-7", Operation: "stop", Source: "lobby_stream", SourceRef: "1764160000000-0", Outcome: "success", ErrorMessage: "<i>done</i>", StartedAtMS: 1, FinishedAtMS: 2})
	require.NoError(t, err)
	addResult(t, f.rdb, "1764160000000-0", "g-7", "success", "", "stopped")
	addResult(t, f.rdb, "1764160000009-0", "g-other", "success", "", "other game")

	code, body := f.get("/games/g-7")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `<strong id="status">stopped</strong>`)
	assert.Contains(t, body, "Last stop result")
	assert.Contains(t, body, "&lt;i&gt;done&lt;/i&gt;")
	assert.Contains(t, body, `<td>lobby_stream <a href="/jobs?q=1764160000000-0">`)
	assert.NotContains(t, body, "other game")

	code, body = f.get("/games/g-none")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, body, "No runtime record")
	code, _ = f.get("/games/%3Cscript%3E")
	assert.Equal(t, http.StatusNotFound, code)
}

// A hash an operator made by hand under the record prefix, named for no
// valid game id (a brace inside), is no game: it was listed, with a link
// to a game page that answers "not a game id".
func TestGamesListSkipsKeysOfNoValidGame(t *testing.T) {
	f := newFixture(t, Options{})
	register(t, f, "g-ok", "running")
	require.NoError(t, f.rdb.HSet(context.Background(), "rtmanager:runtime:{a}b}", "status", "running").Err())
	code, body := f.get("/games")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `href="/games/g-ok"`)
	assert.NotContains(t, body, "a}b")
}
