package testengine

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/moby/moby/client/pkg/versions"
)

// Proxy is an HTTP server on 127.0.0.1 in front of the engine's socket.
// With a maximum API version it answers as a Docker daemon of that version
// does: /_ping says `Api-Version: <max>`, and a request for a newer version
// gets 400 "client version X is too new. Maximum supported API version is
// <max>" (Podman itself accepts any version, so it cannot catch version
// bugs). It can also go down and come back on the same address, as a
// daemon that restarts.
type Proxy struct {
	e    *Engine
	addr string
	rp   *httputil.ReverseProxy

	mu       sync.Mutex
	max      string
	srv      *http.Server
	requests []string
}

var versionedPath = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

// NewProxy starts a proxy; maxAPIVersion "" passes every version through.
// It is closed when the test ends.
func (e *Engine) NewProxy(tb TB, maxAPIVersion string) *Proxy {
	tb.Helper()
	p, err := e.StartProxy(maxAPIVersion)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(p.Close)
	return p
}

// StartProxy starts a proxy; the caller closes it.
func (e *Engine) StartProxy(maxAPIVersion string) (*Proxy, error) {
	target, _ := url.Parse("http://engine")
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.Transport = e.HTTPClient().Transport
	// Stream answers (a stop answers only when the container has stopped).
	rp.FlushInterval = -1
	// A client that goes away mid-request (kill -9) is expected here.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	p := &Proxy{e: e, rp: rp, max: maxAPIVersion}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("testengine: proxy listen: %w", err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	return p, nil
}

func (p *Proxy) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(p.handle)}
	p.mu.Lock()
	p.srv = srv
	p.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (p *Proxy) handle(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	max := p.max
	p.requests = append(p.requests, r.Method+" "+r.URL.RequestURI())
	p.mu.Unlock()
	if max != "" {
		if m := versionedPath.FindStringSubmatch(r.URL.Path); m != nil && versions.GreaterThan(m[1], max) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"message":"client version %s is too new. Maximum supported API version is %s"}`+"\n", m[1], max)
			return
		}
		if r.URL.Path == "/_ping" {
			rw := &pingWriter{ResponseWriter: w, version: max}
			p.rp.ServeHTTP(rw, r)
			return
		}
	}
	p.rp.ServeHTTP(w, r)
}

// pingWriter replaces the engine's Api-Version header with the proxy's.
type pingWriter struct {
	http.ResponseWriter
	version string
}

func (w *pingWriter) WriteHeader(code int) {
	w.Header().Set("Api-Version", w.version)
	w.ResponseWriter.WriteHeader(code)
}

// Host is the proxy's Docker host address, tcp://127.0.0.1:<port>.
func (p *Proxy) Host() string { return "tcp://" + p.addr }

// SetMaxAPIVersion changes the version the proxy answers as ("" for none).
func (p *Proxy) SetMaxAPIVersion(v string) {
	p.mu.Lock()
	p.max = v
	p.mu.Unlock()
}

// Requests are "METHOD /path?query" of every request so far.
func (p *Proxy) Requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.requests...)
}

// RequestsWith are the requests that contain s.
func (p *Proxy) RequestsWith(s string) []string {
	var out []string
	for _, r := range p.Requests() {
		if strings.Contains(r, s) {
			out = append(out, r)
		}
	}
	return out
}

// Down closes the listener and every connection: the daemon is gone.
func (p *Proxy) Down() {
	p.mu.Lock()
	srv := p.srv
	p.srv = nil
	p.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Up listens again on the same address.
func (p *Proxy) Up() error {
	p.mu.Lock()
	up := p.srv != nil
	p.mu.Unlock()
	if up {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return fmt.Errorf("testengine: proxy listen again on %s: %w", p.addr, err)
	}
	p.serve(ln)
	return nil
}

// Close stops the proxy.
func (p *Proxy) Close() {
	p.Down()
}
