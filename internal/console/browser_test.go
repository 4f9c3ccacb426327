package console

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/gen/runtimejobs"
	"galaxy/rtmanager/internal/metrics"
	"galaxy/rtmanager/internal/redisstream"
	"galaxy/rtmanager/internal/runtimes/none"
	"galaxy/rtmanager/internal/runtimestore"
	"galaxy/rtmanager/internal/service"
	"galaxy/rtmanager/internal/stopruntime"
	"galaxy/rtmanager/internal/testredis"
)

// The browser test drives Debian's chromium-headless-shell (installed by
// `make tools`, scripts/ensure-chromium.sh) through chromedp against two
// consoles on one private redis-server: one with a token, one without. A
// real stop pipeline (service.Start, runtime none) answers the replayed job.
// With RTMANAGER_SCREENSHOTS set to a directory (`make docs`), it saves the
// screenshots docs/operations.md shows.

const browserBinary = "chromium-headless-shell"

func TestBrowser(t *testing.T) {
	chrome, err := exec.LookPath(browserBinary)
	require.NoError(t, err, "%s not found: run 'make tools' (scripts/ensure-chromium.sh installs it)", browserBinary)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()

	rs := testredis.Start(t)
	rdb := rs.Client()
	t.Cleanup(func() { _ = rdb.Close() })
	doc, err := api.Load()
	require.NoError(t, err)

	// A backlog: 5 stop jobs delivered to a consumer that died with them.
	backlog(t, rdb, 5, 5, "rtmanager-old")
	store := runtimestore.New(rdb, runtimestore.Options{})
	for _, g := range []string{"g-browser", "g-other"} {
		_, err := store.Register(ctx, stopruntime.Record{GameID: g, Status: "running", Runtime: "none", ContainerID: "c-" + g, EngineEndpoint: "127.0.0.1:7000"})
		require.NoError(t, err)
	}
	replayID := addDead(t, rdb, "g-browser", "redis: connection reset (retries ran out)")
	xssID := addDead(t, rdb, "g-xss", `<script>window.__xss=1</script>`, "note", `<img src=x onerror="window.__xss2=1">`)

	// The stop pipeline, as rtmanager runs it, with the process's metrics.
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	svc, err := stopruntime.New(store, map[string]stopruntime.Driver{"none": none.Driver{}}, stopruntime.Options{})
	require.NoError(t, err)
	pctx, pstop := context.WithCancel(context.Background())
	run, err := service.Start(pctx, rdb, service.Options{
		Stopper: svc, Workers: 2, Contract: doc, Metrics: m, Logger: slog.New(slog.DiscardHandler),
		Broker: redisstream.Options{
			Groups:   map[string]string{runtimejobs.StopJobsChannelPath: "rtmanager", runtimejobs.StartJobsChannelPath: "rtmanager"},
			Consumer: "rtmanager-live", ClaimIdle: time.Hour, Observer: m,
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { pstop(); _ = run.Close(context.Background()) })

	withToken := serveConsole(t, rdb, doc, Options{Token: testToken, Metrics: m.Totals(), Ready: func(context.Context) error { return nil }})
	readOnly := serveConsole(t, rdb, doc, Options{Metrics: m.Totals()})

	bctx := newBrowser(t, ctx, chrome)
	// Each browser step gets a generous bound of its own, so a step that
	// never completes fails by name instead of using up the test's time.
	const stepTimeout = time.Minute
	do := func(t *testing.T, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, stepTimeout)
		defer cancel()
		require.NoError(t, chromedp.Do(sctx, steps...))
	}
	text := func(t *testing.T, sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(bctx, stepTimeout)
		defer cancel()
		v, err := chromedp.Run(sctx, chromedp.TextContent(chromedp.CSS(sel)))
		require.NoError(t, err, "read %s", sel)
		return v
	}
	shots := os.Getenv("RTMANAGER_SCREENSHOTS")
	shot := func(t *testing.T, name string) {
		t.Helper()
		if shots == "" {
			return
		}
		png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644))
	}

	t.Run("overview shows the backlog's pending count", func(t *testing.T) {
		do(t, chromedp.Navigate(withToken+"/"), chromedp.WaitVisible(chromedp.CSS(`#stream-stopJobs td.pending`)))
		assert.Equal(t, "5", text(t, `#stream-stopJobs td.pending`))
		assert.Contains(t, text(t, `#stream-stopJobs table.consumers tbody`), "rtmanager-old")
		assert.Contains(t, text(t, `#ready`), "ready")
		shot(t, "console-overview")
	})

	t.Run("a game's page", func(t *testing.T) {
		do(t, chromedp.Navigate(withToken+"/games?status=running"),
			chromedp.WaitVisible(chromedp.CSS(`a[href="/games/g-browser"]`)))
		shot(t, "console-games")
		do(t, chromedp.Click(chromedp.CSS(`a[href="/games/g-browser"]`)), chromedp.WaitVisible(chromedp.CSS(`#status`)))
		assert.Equal(t, "running", text(t, `#status`))
		assert.Contains(t, text(t, `dl.record`), "c-g-browser")
		shot(t, "console-game")
	})

	t.Run("without the token there is no button and the POST is refused", func(t *testing.T) {
		do(t, chromedp.Navigate(readOnly+"/dead"), chromedp.WaitVisible(chromedp.CSS(`tr.letter`)))
		buttons, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll('main button, main input[type=checkbox], form[action="/dead/replay"]').length`))
		require.NoError(t, err)
		assert.Zero(t, buttons)
		// From the page's own origin, so only the missing token refuses it.
		code, err := chromedp.Run(bctx, chromedp.Evaluate[int](fmt.Sprintf(
			`fetch('/dead/replay', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'id=%s&confirm=yes'}).then(r => r.status)`,
			replayID), chromedp.EvalAwaitPromise))
		require.NoError(t, err)
		assert.Equal(t, http.StatusForbidden, code)
		n, err := rdb.XLen(ctx, runtimejobs.StopJobsDeadChannelPath).Result()
		require.NoError(t, err)
		assert.Equal(t, int64(2), n, "nothing was replayed")
	})

	t.Run("a script in a dead letter is text and does not run", func(t *testing.T) {
		sel := fmt.Sprintf(`tr.letter[data-id="%s"]`, xssID)
		do(t, chromedp.Navigate(withToken+"/dead"), chromedp.WaitVisible(chromedp.CSS(sel)))
		assert.Equal(t, `<script>window.__xss=1</script>`, text(t, sel+` td.error`))
		assert.Contains(t, text(t, sel+` dl.fields`), `<img src=x onerror="window.__xss2=1">`)
		ran, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`window.__xss === 1 || window.__xss2 === 1 || document.querySelectorAll('main script, main img').length > 0`))
		require.NoError(t, err)
		assert.False(t, ran)
	})

	t.Run("replay with the button and see the result arrive live", func(t *testing.T) {
		button := `button.replay-one[value="` + replayID + `"]`
		do(t, chromedp.Navigate(withToken+"/login"),
			chromedp.SendKeys(chromedp.CSS(`input[name=token]`), testToken),
			chromedp.Submit(chromedp.CSS(`input[name=token]`)),
			chromedp.WaitVisible(chromedp.CSS(button)))
		shot(t, "console-dead-letters")
		do(t, chromedp.Click(chromedp.CSS(button)),
			chromedp.WaitVisible(chromedp.CSS(`#confirm`)))
		shot(t, "console-replay-confirm")
		do(t, chromedp.Click(chromedp.CSS(`#confirm`)), chromedp.WaitVisible(chromedp.CSS(`td.new-job a`)))
		newJob := text(t, `td.new-job a`)
		require.Regexp(t, `^[0-9]+-[0-9]+$`, newJob)
		row := `#results tbody tr[data-job="` + newJob + `"]`
		do(t, chromedp.WaitVisible(chromedp.CSS(row)))
		assert.Equal(t, "success", text(t, row+` td:nth-child(5)`))
		shot(t, "console-replayed")
		rec, found, err := store.Get(ctx, "g-browser")
		require.NoError(t, err)
		require.True(t, found)
		assert.Equal(t, "stopped", rec.Status)
	})

	t.Run("jobs and contract pages", func(t *testing.T) {
		do(t, chromedp.Navigate(withToken+"/jobs"), chromedp.WaitVisible(chromedp.CSS(`#results tbody tr`)))
		shot(t, "console-jobs")
		do(t, chromedp.Navigate(withToken+"/contract/"), chromedp.WaitVisible(chromedp.CSS(`#introduction`)))
		assert.Contains(t, text(t, `#introduction`), "rtmanager runtime jobs")
		shot(t, "console-contract")
	})
}

func serveConsole(t *testing.T, rdb *redis.Client, doc *api.Document, opts Options) string {
	t.Helper()
	opts.Contract = doc
	opts.LivePoll = 100 * time.Millisecond
	c, err := New(rdb, opts)
	require.NoError(t, err)
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(func() { c.Close(); srv.Close() })
	return srv.URL
}

// newBrowser starts a headless browser for the test.
func newBrowser(t *testing.T, ctx context.Context, chrome string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox, // the tests may run as root
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("user-data-dir", t.TempDir()),
		// Loopback only: no proxy, and no name resolves to anything.
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"),
	)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(func() { bcancel(); acancel() })
	require.NoError(t, chromedp.Do(bctx), "start %s", chrome)
	return bctx
}
