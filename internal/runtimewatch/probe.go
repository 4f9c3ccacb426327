package runtimewatch

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"galaxy/rtmanager/internal/runtimes"
	"galaxy/rtmanager/internal/stopruntime"
)

// probeLoop checks every ProbeInterval that each watched engine accepts a
// TCP connection on its endpoint, ProbeConcurrency at a time.
func (w *Watcher) probeLoop() {
	t := time.NewTicker(w.opts.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-w.ctx.Done():
			return
		case <-t.C:
		}
		w.probeRound()
	}
}

// probeRound checks every watched engine once.
func (w *Watcher) probeRound() {
	recs := w.watched()
	withEndpoint := recs[:0]
	for _, rec := range recs {
		if rec.EngineEndpoint != "" {
			withEndpoint = append(withEndpoint, rec)
		}
	}
	w.each(withEndpoint, w.opts.ProbeConcurrency, w.probe)
}

// probe checks one engine. FailureThreshold failures in a row make a
// running engine unhealthy (unless its runtime ended: that is an exit);
// a success makes an unhealthy one healthy again. No restart: a restart
// loses the game's state, so Lobby decides (and may send a stop job).
func (w *Watcher) probe(rec stopruntime.Record) {
	err := w.check1(rec)
	if w.ctx.Err() != nil {
		return
	}
	w.mu.Lock()
	g := w.games[rec.GameID]
	if g == nil || g.rec.ContainerID != rec.ContainerID || g.forgotten {
		w.mu.Unlock()
		return
	}
	if err != nil {
		g.failures++
	} else {
		g.failures = 0
	}
	fails, cur := g.failures, g.rec
	w.mu.Unlock()

	switch {
	case err != nil:
		w.opts.Metrics.ProbeFailed()
		if fails < w.opts.FailureThreshold || cur.Status != stopruntime.StatusRunning {
			return
		}
		ictx, icancel := context.WithTimeout(w.ctx, 30*time.Second)
		st, ierr := w.opts.Drivers[cur.Runtime].Inspect(ictx, cur.ContainerID)
		icancel()
		if ierr == nil && !st.Running {
			w.report(cur.GameID, cur.ContainerID, st)
			return
		}
		reason := fmt.Sprintf("%d health checks failed in a row; last: %v", fails, err)
		w.changeHealth(cur, EventUnhealthy, reason)
	case cur.Status == stopruntime.StatusUnhealthy:
		w.changeHealth(cur, EventHealthy, "the engine accepts connections on "+cur.EngineEndpoint+" again")
	}
}

// check1 is one health check: an HTTP GET of the profile's health path
// (2xx or 3xx is healthy), else a TCP connect to the endpoint.
func (w *Watcher) check1(rec stopruntime.Record) error {
	ctx, cancel := context.WithTimeout(w.ctx, w.opts.ProbeTimeout)
	defer cancel()
	if path := w.opts.HealthPath(rec.Engine); path != "" {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+rec.EngineEndpoint+path, nil)
		if err != nil {
			return err
		}
		res, err := w.http.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
		_ = res.Body.Close()
		if res.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %s", path, res.Status)
		}
		return nil
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", rec.EngineEndpoint)
	if err == nil {
		_ = conn.Close()
	}
	return err
}

// newProbeClient makes the client of HTTP health checks: no connection
// kept between checks (one check per engine per interval), redirects not
// followed (a 3xx answer is healthy).
func newProbeClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout:   timeout,
		Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

func (w *Watcher) changeHealth(rec stopruntime.Record, typ, reason string) {
	ctx, cancel := context.WithTimeout(w.ctx, 10*time.Second)
	defer cancel()
	if err := w.change(ctx, rec, typ, runtimes.State{Running: true, Reason: reason}); err != nil && w.ctx.Err() == nil {
		w.opts.Logger.Warn("report health change failed; the next probe tries again", "game_id", rec.GameID, "type", typ, "err", err)
	}
}
