package console

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/testredis"
)

// fixture is a console on a private redis-server, served by httptest.
type fixture struct {
	t   *testing.T
	rdb *redis.Client
	c   *Console
	srv *httptest.Server
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	rs := testredis.Start(t)
	rdb := rs.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	return newFixtureOn(t, rdb, opts)
}

func newFixtureOn(t *testing.T, rdb *redis.Client, opts Options) *fixture {
	t.Helper()
	doc, err := api.Load()
	require.NoError(t, err)
	opts.Contract = doc
	c, err := New(rdb, opts)
	require.NoError(t, err)
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(func() { c.Close(); srv.Close() })
	return &fixture{t: t, rdb: rdb, c: c, srv: srv}
}

// get returns a page's status and body.
func (f *fixture) get(path string) (int, string) {
	f.t.Helper()
	res, err := http.Get(f.srv.URL + path)
	require.NoError(f.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(f.t, err)
	return res.StatusCode, string(b)
}

// post sends a form as a same-origin browser would, with extra headers.
func (f *fixture) post(path string, form url.Values, hdr map[string]string) (int, string, *http.Response) {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(form.Encode()))
	require.NoError(f.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
			continue
		}
		req.Header.Set(k, v)
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := cl.Do(req)
	require.NoError(f.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(f.t, err)
	return res.StatusCode, string(b), res
}

// addDead appends a stop-job dead letter as the broker writes it.
func addDead(t *testing.T, rdb *redis.Client, gameID, errText string, extra ...any) string {
	t.Helper()
	vals := append([]any{
		redisstream.FieldDeadReason, redisstream.DeadInvalid, redisstream.FieldDeadError, errText,
		redisstream.FieldOriginalID, "1764160000000-0", redisstream.FieldDeliveryCount, "1",
		redisstream.FieldDeadAtMS, "1764160000800",
		"game_id", gameID, "reason", "admin_request",
	}, extra...)
	id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: runtimejobs.StopJobsDeadChannelPath, Values: vals}).Result()
	require.NoError(t, err)
	return id
}

// addResult appends a job result as rtmanager writes it.
func addResult(t *testing.T, rdb *redis.Client, jobID, gameID, outcome, code, msg string) string {
	t.Helper()
	id, err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: runtimejobs.JobResultsChannelPath, Values: []any{
		"job_id", jobID, "game_id", gameID, "operation", "stop", "outcome", outcome, "error_code", code,
		"error_message", msg, "container_id", "c-1", "engine_endpoint", "127.0.0.1:7000", "completed_at_ms", "1764160000420",
	}}).Result()
	require.NoError(t, err)
	return id
}

// redisXAdd is a short XAdd for tests.
type redisXAdd struct {
	stream string
	values []any
}

func (a redisXAdd) args() *redis.XAddArgs { return &redis.XAddArgs{Stream: a.stream, Values: a.values} }
