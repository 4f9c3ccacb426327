package docker

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/docker/go-connections/tlsconfig"
	"github.com/moby/moby/client"
)

// clientOpts are the client options for a driver of n slots. The client's
// own transport keeps 2 idle connections per host (Go's default) and 6 in
// all, so n concurrent stops would open and close connections to the
// daemon all the time; here the transport keeps n idle, and a limit on
// connections per host below n is raised to n.
//
// The client's WithTLSClientConfigFromEnv replaces the whole HTTP client
// (and with it these settings), so $DOCKER_CERT_PATH and
// $DOCKER_TLS_VERIFY are read here, as that option reads them.
func clientOpts(opts Options, n int) ([]client.Opt, error) {
	var tr *http.Transport
	hc := &http.Client{CheckRedirect: client.CheckRedirect}
	if opts.HTTPClient != nil {
		*hc = *opts.HTTPClient
	}
	switch t := hc.Transport.(type) {
	case *http.Transport:
		tr = t.Clone()
	case nil:
		tlsc, err := envTLS()
		if err != nil {
			return nil, err
		}
		// A dialer now (the host options replace it) keeps Go from turning
		// on HTTP/2 when the client clones this transport, which would give
		// it a TLS config and make the client speak https to a plain socket.
		tr = &http.Transport{IdleConnTimeout: 30 * time.Second, TLSClientConfig: tlsc,
			DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}
	}
	if tr != nil {
		tr.MaxIdleConns = max(tr.MaxIdleConns, n)
		tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, n)
		if tr.MaxConnsPerHost > 0 {
			tr.MaxConnsPerHost = max(tr.MaxConnsPerHost, n)
		}
		hc.Transport = tr
	}
	// The HTTP client first: the host options then configure its
	// transport's dialer (the default socket, $DOCKER_HOST, Options.Host).
	ops := []client.Opt{client.WithHTTPClient(hc), client.WithHost(client.DefaultDockerHost), client.WithHostFromEnv()}
	if opts.Host != "" {
		ops = append(ops, client.WithHost(opts.Host))
	}
	return ops, nil
}

// envTLS is the TLS configuration of $DOCKER_CERT_PATH (ca.pem, cert.pem,
// key.pem; the server's certificate verified when $DOCKER_TLS_VERIFY is
// set), or nil without it.
func envTLS() (*tls.Config, error) {
	dir := os.Getenv(client.EnvOverrideCertPath)
	if dir == "" {
		return nil, nil
	}
	c, err := tlsconfig.Client(tlsconfig.Options{
		CAFile:             filepath.Join(dir, "ca.pem"),
		CertFile:           filepath.Join(dir, "cert.pem"),
		KeyFile:            filepath.Join(dir, "key.pem"),
		InsecureSkipVerify: os.Getenv(client.EnvTLSVerify) == "",
		MinVersion:         tls.VersionTLS12,
	})
	if err != nil {
		return nil, fmt.Errorf("configure TLS from %s=%s: %w", client.EnvOverrideCertPath, dir, err)
	}
	return c, nil
}
