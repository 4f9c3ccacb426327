package console

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/gen/runtimejobs"
)

const testToken = "s3cret-console-token"

func TestDeadLetterFieldsAreEscaped(t *testing.T) {
	f := newFixture(t, Options{Token: testToken})
	addDead(t, f.rdb, "g-1", `<script>alert("e")</script>`, "note", `<img src=x onerror=alert(1)>`)

	code, body := f.get("/dead")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `&lt;script&gt;alert(&#34;e&#34;)&lt;/script&gt;`)
	assert.Contains(t, body, `&lt;img src=x onerror=alert(1)&gt;`)
	assert.NotContains(t, body, `<script>alert`)
	assert.NotContains(t, body, `<img src=x`)
}

func TestWithoutTokenNoButtonAndReplayRefused(t *testing.T) {
	f := newFixture(t, Options{})
	id := addDead(t, f.rdb, "g-1", "bad")

	_, body := f.get("/dead")
	assert.NotContains(t, body, "Replay")
	assert.NotContains(t, body, `action="/dead/replay"`)
	assert.Contains(t, body, "read-only")

	for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer " + testToken}} {
		code, _, _ := f.post("/dead/replay", url.Values{"id": {id}, "confirm": {"yes"}}, hdr)
		assert.Equal(t, http.StatusForbidden, code)
	}
	n, err := f.rdb.XLen(context.Background(), runtimejobs.StopJobsDeadChannelPath).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "the dead letter stays")
}

func TestWithTokenButNotLoggedInReplayRefused(t *testing.T) {
	f := newFixture(t, Options{Token: testToken})
	id := addDead(t, f.rdb, "g-1", "bad")

	_, body := f.get("/dead")
	assert.NotContains(t, body, `action="/dead/replay"`)
	assert.Contains(t, body, `href="/login"`)
	code, _, _ := f.post("/dead/replay", url.Values{"id": {id}, "confirm": {"yes"}}, map[string]string{"Authorization": "Bearer wrong"})
	assert.Equal(t, http.StatusForbidden, code)
	code, _, _ = f.post("/dead/replay", url.Values{"id": {id}, "confirm": {"yes"}},
		map[string]string{"Cookie": sessionCookie + "=" + testToken})
	assert.Equal(t, http.StatusForbidden, code, "the token itself is not a session")
}

func TestLoginSetsASessionThatIsNotTheToken(t *testing.T) {
	f := newFixture(t, Options{Token: testToken})
	code, _, _ := f.post("/login", url.Values{"token": {"wrong"}}, nil)
	assert.Equal(t, http.StatusUnauthorized, code)

	code, _, res := f.post("/login", url.Values{"token": {testToken}}, nil)
	require.Equal(t, http.StatusSeeOther, code)
	var ck *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == sessionCookie {
			ck = c
		}
	}
	require.NotNil(t, ck)
	assert.NotContains(t, ck.Value, testToken)
	assert.True(t, ck.HttpOnly)
	assert.Equal(t, http.SameSiteStrictMode, ck.SameSite)

	id := addDead(t, f.rdb, "g-1", "bad")
	code, body, _ := f.post("/dead/replay", url.Values{"id": {id}, "confirm": {"yes"}}, map[string]string{"Cookie": ck.Name + "=" + ck.Value})
	require.Equal(t, http.StatusOK, code, body)
	assert.Contains(t, body, `class="new-job"`)
}

func TestReplayConfirmsThenReplaysThroughDeadletters(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{Token: testToken})
	a := addDead(t, f.rdb, "g-a", "bad")
	b := addDead(t, f.rdb, "g-b", "bad")
	auth := map[string]string{"Authorization": "Bearer " + testToken}

	// Logged in, the page has the buttons.
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/dead", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	page, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	assert.Contains(t, string(page), `action="/dead/replay"`)
	assert.Contains(t, string(page), `name="only" value="`+a+`"`)

	// Without confirm: a confirmation page, nothing replayed.
	code, body, _ := f.post("/dead/replay", url.Values{"id": {a, b}}, auth)
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "Replay 2 dead letter(s)?")
	assert.Contains(t, body, `name="confirm" value="yes"`)
	n, err := f.rdb.XLen(ctx, runtimejobs.StopJobsChannelPath).Result()
	require.NoError(t, err)
	assert.Zero(t, n)

	// A row's own button replays that letter alone.
	code, body, _ = f.post("/dead/replay", url.Values{"id": {a, b}, "only": {a}, "confirm": {"yes"}}, auth)
	require.Equal(t, http.StatusOK, code, body)
	jobs, err := f.rdb.XRange(ctx, runtimejobs.StopJobsChannelPath, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	assert.Equal(t, "g-a", jobs[0].Values["game_id"])
	assert.Contains(t, body, jobs[0].ID)

	// Replaying it again: gone, refused with a conflict.
	code, body, _ = f.post("/dead/replay", url.Values{"id": {a}, "confirm": {"yes"}}, auth)
	assert.Equal(t, http.StatusConflict, code)
	assert.Contains(t, body, "already replayed")
}

func TestCrossSiteReplayIsRefused(t *testing.T) {
	f := newFixture(t, Options{Token: testToken})
	id := addDead(t, f.rdb, "g-1", "bad")
	form := url.Values{"id": {id}, "confirm": {"yes"}}
	auth := "Bearer " + testToken

	code, _, _ := f.post("/dead/replay", form, map[string]string{"Authorization": auth, "Sec-Fetch-Site": "cross-site"})
	assert.Equal(t, http.StatusForbidden, code)
	code, _, _ = f.post("/dead/replay", form, map[string]string{"Authorization": auth, "Sec-Fetch-Site": "", "Origin": "http://evil.example"})
	assert.Equal(t, http.StatusForbidden, code)
	code, _, _ = f.post("/login", url.Values{"token": {testToken}}, map[string]string{"Sec-Fetch-Site": "cross-site"})
	assert.Equal(t, http.StatusForbidden, code)

	n, err := f.rdb.XLen(context.Background(), runtimejobs.StopJobsDeadChannelPath).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(1), n)

	// The same request from the console's own origin goes through.
	code, _, _ = f.post("/dead/replay", form, map[string]string{"Authorization": auth, "Sec-Fetch-Site": "", "Origin": f.srv.URL})
	assert.Equal(t, http.StatusOK, code)
}

func TestDeadLettersPageAndReplayOfStartJobs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{Token: testToken})
	id, err := f.rdb.XAdd(ctx, redisXAdd{runtimejobs.StartJobsDeadChannelPath, []any{"dead_reason", "invalid", "dead_error", "no profile", "original_id", "1-0", "delivery_count", "1", "dead_at_ms", "1", "game_id", "g-s", "engine", "chess"}}.args()).Result()
	require.NoError(t, err)

	code, body := f.get("/dead?stream=startJobs")
	require.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, "no profile")
	assert.Contains(t, body, "runtime:start_jobs:dead")

	code, _, _ = f.post("/dead/replay", url.Values{"stream": {"startJobs"}, "id": {id}, "confirm": {"yes"}}, map[string]string{"Authorization": "Bearer " + testToken})
	require.Equal(t, http.StatusOK, code)
	jobs, err := f.rdb.XRange(ctx, runtimejobs.StartJobsChannelPath, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	assert.Equal(t, map[string]any{"game_id": "g-s", "engine": "chess"}, jobs[0].Values)
}

func TestDeadLettersPageIsPaged(t *testing.T) {
	f := newFixture(t, Options{})
	var ids []string
	for i := 0; i < deadShow+5; i++ {
		ids = append(ids, addDead(t, f.rdb, "g-1", "bad"))
	}
	_, body := f.get("/dead")
	assert.Contains(t, body, `data-id="`+ids[len(ids)-1]+`"`)
	assert.NotContains(t, body, `data-id="`+ids[4]+`"`)
	assert.Contains(t, body, "before="+ids[5])
	_, body = f.get("/dead?before=" + ids[5])
	assert.Contains(t, body, `data-id="`+ids[4]+`"`)
	assert.Contains(t, body, `data-id="`+ids[0]+`"`)
}

func TestReplayOfASelection(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, Options{Token: testToken})
	a := addDead(t, f.rdb, "g-a", "bad")
	addDead(t, f.rdb, "g-b", "bad")
	c := addDead(t, f.rdb, "g-c", "bad")
	code, body, _ := f.post("/dead/replay", url.Values{"id": {a, c}, "confirm": {"yes"}}, map[string]string{"Authorization": "Bearer " + testToken})
	require.Equal(t, http.StatusOK, code, body)
	jobs, err := f.rdb.XRange(ctx, runtimejobs.StopJobsChannelPath, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, jobs, 2)
	assert.Equal(t, "g-a", jobs[0].Values["game_id"])
	assert.Equal(t, "g-c", jobs[1].Values["game_id"])
	left, err := f.rdb.XRange(ctx, runtimejobs.StopJobsDeadChannelPath, "-", "+").Result()
	require.NoError(t, err)
	require.Len(t, left, 1)
	assert.Equal(t, "g-b", left[0].Values["game_id"])
}
