package testengine

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// CountingProxy is an HTTP server on 127.0.0.1 in front of the engine's
// socket that counts the requests in flight at the engine and the client
// connections it accepts. A request counts from its arrival until the
// engine's whole answer has been read, and only then is the answer sent
// on: a client that starts its next request after an answer can never be
// counted twice. Answers are buffered, so streaming endpoints (events,
// logs, attach) do not work through it.
type CountingProxy struct {
	srv  *http.Server
	addr string
	up   *http.Client

	mu       sync.Mutex
	delay    time.Duration
	inFlight int
	max      int
	conns    int
	log      []Request
}

// Request is one request through a CountingProxy: "METHOD /path?query",
// when it arrived and how long the engine took to answer it.
type Request struct {
	Line  string
	Start time.Time
	Took  time.Duration
}

// NewCountingProxy starts a counting proxy, closed when the test ends.
func (e *Engine) NewCountingProxy(tb TB) *CountingProxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(fmt.Errorf("testengine: counting proxy listen: %w", err))
	}
	p := &CountingProxy{addr: ln.Addr().String(), up: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", e.sock)
		},
		// The proxy itself must not limit or serialise anything.
		MaxIdleConnsPerHost: 4096,
	}}}
	p.srv = &http.Server{Handler: http.HandlerFunc(p.handle), ConnState: func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			p.mu.Lock()
			p.conns++
			p.mu.Unlock()
		}
	}}
	go func() { _ = p.srv.Serve(ln) }()
	tb.Cleanup(func() { _ = p.srv.Close() })
	return p
}

// hopHeaders are not forwarded.
var hopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Te", "Trailer", "Content-Length"}

func (p *CountingProxy) handle(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	p.mu.Lock()
	p.inFlight++
	p.max = max(p.max, p.inFlight)
	delay := p.delay
	p.mu.Unlock()
	status, header, body, err := p.forward(r, delay)
	p.mu.Lock()
	p.inFlight--
	p.log = append(p.log, Request{Line: r.Method + " " + r.URL.RequestURI(), Start: start, Took: time.Since(start)})
	p.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	for k, v := range header {
		w.Header()[k] = v
	}
	for _, h := range hopHeaders {
		w.Header().Del(h)
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// forward sends r to the engine (after delay) and reads the whole answer.
func (p *CountingProxy) forward(r *http.Request, delay time.Duration) (int, http.Header, []byte, error) {
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return 0, nil, nil, r.Context().Err()
		}
	}
	req := r.Clone(r.Context())
	req.RequestURI = ""
	req.URL.Scheme, req.URL.Host, req.Host = "http", "engine", "engine"
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	req.ContentLength = r.ContentLength
	resp, err := p.up.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, body, nil
}

// Host is the proxy's Docker host address, tcp://127.0.0.1:<port>.
func (p *CountingProxy) Host() string { return "tcp://" + p.addr }

// SetDelay holds every later request that long before it is forwarded
// (it counts as in flight meanwhile), so concurrent requests overlap.
func (p *CountingProxy) SetDelay(d time.Duration) {
	p.mu.Lock()
	p.delay = d
	p.mu.Unlock()
}

// MaxInFlight is the most requests that were in flight at once.
func (p *CountingProxy) MaxInFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.max
}

// InFlight is the requests in flight now.
func (p *CountingProxy) InFlight() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.inFlight
}

// Conns is how many client connections the proxy accepted.
func (p *CountingProxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.conns
}

// RequestsWith are the answered requests whose line contains s.
func (p *CountingProxy) RequestsWith(s string) []Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Request
	for _, r := range p.log {
		if strings.Contains(r.Line, s) {
			out = append(out, r)
		}
	}
	return out
}
