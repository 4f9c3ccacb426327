// Package console is rtmanager's operator console: server-rendered pages
// (html/template, readable with JavaScript off) on rtmanager's HTTP
// listener that show the job streams, the results, the games and the dead
// letters, replay dead letters, and show the contract. Every page reads
// Redis with bounded cost (XINFO, XPENDING summaries, XRANGE with COUNT,
// one record's HGETALL, SCAN pages with a cap); docs/operations.md
// describes the pages, the flags and the security.
package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"galaxy/rtmanager/api"
	"galaxy/rtmanager/internal/runtimestore"
)

// Options configure a Console.
type Options struct {
	// Contract is the loaded contract (api.Load); required.
	Contract *api.Document
	// Group overrides the contract's consumer group (rtmanager --group).
	Group string
	// KeyPrefix is runtimestore.Options.KeyPrefix; default "rtmanager:".
	KeyPrefix string
	// Layout is where the keys are (api.NewLayout), the broker's and the
	// store's; the zero value is the plain keys of one shard.
	Layout api.Layout
	// Token, when set, allows replays to whoever presents it; empty keeps
	// the console read-only.
	Token string
	// Ready is /readyz's check; nil shows the state as unknown.
	Ready func(context.Context) error
	// Metrics gathers the process's own rtmanager_job_results_total and
	// rtmanager_dead_letters_total (metrics.Metrics.Totals), sampled for
	// the rates every few seconds; nil shows no rates.
	Metrics prometheus.Gatherer
	// Logger; default slog.Default().
	Logger *slog.Logger
	// LivePoll is how often a live results stream reads Redis; default
	// 500ms.
	LivePoll time.Duration
}

// Console serves the pages. Create it with New; Handler serves it and Run
// samples the rates.
type Console struct {
	rdb    redis.UniversalClient
	opts   Options
	keys   keys
	gameID *regexp.Regexp
	auth   auth
	rates  *rates
	pages  *pages
	hub    *hub
	log    *slog.Logger

	// done ends live streams when the HTTP server shuts down (Close).
	done   context.Context
	cancel context.CancelFunc
}

// New builds a console on rdb, which the caller owns and closes.
func New(rdb redis.UniversalClient, opts Options) (*Console, error) {
	if opts.Contract == nil {
		return nil, errors.New("console: no contract")
	}
	store := runtimestore.New(rdb, runtimestore.Options{KeyPrefix: opts.KeyPrefix, Layout: opts.Layout})
	k, err := newKeys(opts.Contract, opts.Group, opts.Layout, store)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	gid, err := gameIDPattern(opts.Contract)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	p, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.LivePoll <= 0 {
		opts.LivePoll = 500 * time.Millisecond
	}
	done, cancel := context.WithCancel(context.Background())
	c := &Console{
		rdb: rdb, opts: opts, keys: k, gameID: gid, auth: newAuth(opts.Token),
		rates: &rates{gather: opts.Metrics}, pages: p, log: opts.Logger,
		done: done, cancel: cancel,
	}
	c.hub = newHub(c)
	c.rates.take(time.Now())
	return c, nil
}

// Run samples the rates until ctx ends.
func (c *Console) Run(ctx context.Context) {
	t := time.NewTicker(sampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			c.rates.take(now)
		}
	}
}

// Close ends the live streams, so a server's Shutdown does not wait for
// them (http.Server.RegisterOnShutdown).
func (c *Console) Close() { c.cancel() }

// gameIDPattern is the contract's game_id pattern (of the stop job).
func gameIDPattern(doc *api.Document) (*regexp.Regexp, error) {
	for _, ch := range doc.Channels {
		if ch.Message == nil || ch.Message.Payload == nil {
			continue
		}
		if p, ok := ch.Message.Payload.Properties["game_id"]; ok && p.Pattern != "" {
			return regexp.Compile(p.Pattern)
		}
	}
	return nil, errors.New("the contract has no game_id pattern")
}

// Handler serves the console under "/". It leaves /metrics, /healthz and
// /readyz to the caller's mux, which matches them first.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.overview)
	mux.HandleFunc("GET /jobs", c.jobs)
	mux.HandleFunc("GET /jobs/live", c.live)
	mux.HandleFunc("GET /games", c.games)
	mux.HandleFunc("GET /games/{id}", c.game)
	mux.HandleFunc("GET /dead", c.dead)
	mux.HandleFunc("POST /dead/replay", c.replay)
	mux.HandleFunc("GET /login", c.loginForm)
	mux.HandleFunc("POST /login", c.login)
	mux.HandleFunc("POST /logout", c.logout)
	mux.Handle("GET /static/", staticHandler())
	mux.Handle("GET /contract/", contractHandler())
	// Cross-origin unsafe requests (a form on another site posting a
	// replay) are refused before any handler runs: Sec-Fetch-Site, else
	// Origin against Host.
	cop := http.NewCrossOriginProtection()
	return securityHeaders(cop.Handler(mux))
}

// securityHeaders forbids framing, sniffing and any script or style not
// served by the console itself.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		if isContract(r.URL.Path) {
			// The AsyncAPI template's page is one file with inline scripts
			// and styles (it compiles schemas at run time); it may load
			// nothing from anywhere.
			hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:; font-src data:; frame-ancestors 'none'; form-action 'none'")
		} else {
			hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
		}
		h.ServeHTTP(w, r)
	})
}
