package console

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/testredis"
)

func TestJobsFilterByOutcomeAndErrorCode(t *testing.T) {
	f := newFixture(t, Options{})
	addResult(t, f.rdb, "1-0", "g-ok", "success", "", "")
	addResult(t, f.rdb, "2-0", "g-nf", "failure", "not_found", "no runtime record for game g-nf")
	addResult(t, f.rdb, "3-0", "g-sf", "failure", "stop_failed", "<b>daemon</b>")

	_, body := f.get("/jobs")
	for _, g := range []string{"g-ok", "g-nf", "g-sf"} {
		assert.Contains(t, body, `href="/games/`+g+`"`)
	}
	assert.Contains(t, body, "&lt;b&gt;daemon&lt;/b&gt;")
	_, body = f.get("/jobs?outcome=failure")
	assert.NotContains(t, body, `href="/games/g-ok"`)
	assert.Contains(t, body, `href="/games/g-nf"`)
	_, body = f.get("/jobs?outcome=failure&code=stop_failed")
	assert.NotContains(t, body, `href="/games/g-nf"`)
	assert.Contains(t, body, `href="/games/g-sf"`)
	_, body = f.get("/jobs?code=none")
	assert.Contains(t, body, `href="/games/g-ok"`)
	assert.NotContains(t, body, `href="/games/g-sf"`)
}

func TestSearchFindsAJobsTimeline(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{})
	backlog(t, f.rdb, 1, 1, "worker-a") // delivered, not acknowledged
	jobs, err := f.rdb.XRange(ctx, runtimejobs.StopJobsChannelPath, "-", "+").Result()
	require.NoError(t, err)
	job := jobs[0].ID
	addResult(t, f.rdb, job, "g-0", "failure", "invalid_job", "bad reason")
	addDead(t, f.rdb, "g-0", "bad reason")
	require.NoError(t, f.rdb.XAdd(ctx, &redis.XAddArgs{Stream: runtimejobs.StopJobsDeadChannelPath, Values: []any{
		"dead_reason", "invalid", "dead_error", "this one", "original_id", job, "delivery_count", "2", "dead_at_ms", "1", "game_id", "g-0"}}).Err())
	require.NoError(t, f.rdb.XAdd(ctx, &redis.XAddArgs{Stream: f.c.keys.operations, Values: []any{
		"game_id", "g-0", "operation", "stop", "source", "lobby_stream", "source_ref", job, "outcome", "failure", "finished_at_ms", "2"}}).Err())

	code, body := f.get("/jobs?q=" + job)
	require.Equal(t, http.StatusOK, code)
	for _, kind := range []string{"entry", "pending", "result", "dead letter", "operation"} {
		assert.Contains(t, body, `<td class="kind">`+kind+`</td>`)
	}
	assert.Contains(t, body, "worker-a")
	assert.Contains(t, body, "this one")
	assert.NotContains(t, body, "1764160000000-0", "a dead letter of another job")

	// A game id goes to the game's page.
	res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Get(f.srv.URL + "/jobs?q=g-0")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/games/g-0", res.Header.Get("Location"))

	code, body = f.get("/jobs?q=%3Cscript%3E")
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "&lt;script&gt;")
}

func TestLiveStreamsNewResults(t *testing.T) {
	f := newFixture(t, Options{LivePoll: 20 * time.Millisecond})
	first := addResult(t, f.rdb, "1-0", "g-old", "success", "", "")

	req, err := http.NewRequest(http.MethodGet, f.srv.URL+"/jobs/live?after="+first+"&outcome=failure", nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := http.DefaultClient.Do(req.WithContext(ctx))
	require.NoError(t, err)
	defer res.Body.Close()
	assert.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))

	addResult(t, f.rdb, "2-0", "g-ok", "success", "", "")
	want := addResult(t, f.rdb, "3-0", "g-fail", "failure", "stop_failed", "<x>")

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var got []string
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-lines:
			got = append(got, l)
			if strings.HasPrefix(l, "data: ") {
				assert.Contains(t, l, `"job_id":"3-0"`)
				assert.Contains(t, got, "id: "+want)
				assert.NotContains(t, strings.Join(got, "\n"), "g-ok", "filtered out")
				assert.NotContains(t, strings.Join(got, "\n"), "g-old", "before after")
				return
			}
		case <-deadline:
			t.Fatalf("no event; got %q", got)
		}
	}
}

func TestLiveStreamsEndWhenTheConsoleCloses(t *testing.T) {
	f := newFixture(t, Options{})
	res, err := http.Get(f.srv.URL + "/jobs/live?after=0-0")
	require.NoError(t, err)
	defer res.Body.Close()
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
		}
		close(done)
	}()
	f.c.Close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the live stream did not end")
	}
}

func TestNoSecretOnAnyPage(t *testing.T) {
	const pass = "redis-pass-Zq81"
	rs := testredis.Start(t, testredis.Options{Args: []string{"--requirepass", pass}})
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), Password: pass})
	t.Cleanup(func() { _ = rdb.Close() })
	f := newFixtureOn(t, rdb, Options{Token: testToken})
	id := addDead(t, rdb, "g-1", "bad")
	addResult(t, rdb, "1-0", "g-1", "success", "", "")
	register(t, f, "g-1", "running")
	for _, p := range []string{"/", "/jobs", "/jobs?q=1-0", "/games", "/games/g-1", "/dead", "/login", "/dead?before=" + id} {
		code, body := f.get(p)
		assert.Equal(t, http.StatusOK, code, p)
		assert.NotContains(t, body, pass, p)
		assert.NotContains(t, body, testToken, p)
	}
}
