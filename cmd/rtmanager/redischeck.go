package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// checkRedis refuses to start with a configuration that no retry can fix
// (exit 2): credentials Redis rejects, a database index it does not have,
// TLS against a server without it, a certificate not trusted, a redis://
// URL that reaches a cluster node or a cluster URL that reaches a server
// without cluster mode. An unreachable Redis is not fatal: rtmanager keeps
// trying, reports not ready, and checks again once Redis answers; a
// configuration error found then ends the run through fail.
func checkRedis(ctx context.Context, rdb redis.UniversalClient, log *slog.Logger, fail context.CancelCauseFunc) error {
	err := pingOnce(ctx, rdb)
	if err == nil {
		return clusterMismatch(ctx, rdb)
	}
	if cerr := configError(ctx, seedOptions(rdb), err); cerr != nil {
		return cerr
	}
	log.Warn("redis unreachable at start; will keep trying", "err", err.Error())
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := pingOnce(ctx, rdb)
			var cerr error
			if err == nil {
				cerr = clusterMismatch(ctx, rdb)
			} else {
				cerr = configError(ctx, seedOptions(rdb), err)
			}
			if cerr != nil {
				log.Error("redis answered; the configuration is wrong", "err", cerr.Error())
				fail(cerr)
				return
			}
			if err == nil {
				return
			}
		}
	}()
	return nil
}

func pingOnce(ctx context.Context, rdb redis.UniversalClient) error {
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return rdb.Ping(pctx).Err()
}

// seedOptions are the options of the node that configError describes: the
// server itself, or a cluster's first seed.
func seedOptions(rdb redis.UniversalClient) *redis.Options {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options()
	case *redis.ClusterClient:
		o := c.Options()
		return &redis.Options{Addr: o.Addrs[0], TLSConfig: o.TLSConfig, Username: o.Username}
	}
	return &redis.Options{}
}

// clusterMismatch is a usage error when a single-node client reaches a
// cluster node: it would get MOVED for most keys and CROSSSLOT for every
// commit, for ever.
func clusterMismatch(ctx context.Context, rdb redis.UniversalClient) error {
	c, ok := rdb.(*redis.Client)
	if !ok {
		return nil
	}
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := c.Info(ictx, "cluster").Result()
	if err != nil || !strings.Contains(info, "cluster_enabled:1") {
		// An INFO refused (ACL) or lost cannot tell; a cluster node still
		// fails every commit loudly, so this check is a kindness.
		return nil
	}
	scheme := "redis+cluster"
	if c.Options().TLSConfig != nil {
		scheme = "rediss+cluster"
	}
	return usagef("--redis-url reaches %s, a Redis Cluster node: use %s://%s?addr=host:port&addr=… (the seed nodes of the cluster)",
		c.Options().Addr, scheme, c.Options().Addr)
}

// configError is a usage error when err (from PING) comes from the
// configuration rather than from Redis being away.
func configError(ctx context.Context, opts *redis.Options, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "NOAUTH"), strings.Contains(msg, "invalid password"):
		return usagef("redis refused the credentials of --redis-url: %s", msg)
	case strings.Contains(msg, "NOPERM"):
		return usagef("redis refused a command to the user of --redis-url (ACL): %s", msg)
	case strings.Contains(msg, "cluster support disabled"):
		return usagef("--redis-url is a cluster URL but the server at %s is not in cluster mode: use redis:// (rediss:// for TLS)", opts.Addr)
	case strings.Contains(msg, "DB index is out of range"), strings.Contains(msg, "invalid DB index"):
		return usagef("redis has no database %d (the path of --redis-url): %s", opts.DB, msg)
	}
	var unknownCA x509.UnknownAuthorityError
	var badHost x509.HostnameError
	var invalid x509.CertificateInvalidError
	var verify *tls.CertificateVerificationError
	var header tls.RecordHeaderError
	switch {
	case errors.As(err, &unknownCA), errors.As(err, &badHost), errors.As(err, &invalid), errors.As(err, &verify):
		return usagef("redis's TLS certificate is not accepted (rediss:// of --redis-url): %s", msg)
	case errors.As(err, &header):
		return usagef("rediss:// but %s does not answer TLS", opts.Addr)
	}
	if opts.TLSConfig != nil && speaksPlainRESP(ctx, opts.Addr) {
		// A plaintext server leaves a TLS handshake waiting until the
		// timeout, which looks like an outage; ask it in plain text.
		return usagef("--redis-url is rediss:// (TLS) but the server at %s speaks plain Redis: use redis:// (redis+cluster:// for a cluster)", opts.Addr)
	}
	return nil
}

// speaksPlainRESP reports whether addr answers a plaintext PING the way
// Redis does (+PONG, or an error reply such as -NOAUTH).
func speaksPlainRESP(ctx context.Context, addr string) bool {
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	deadline, _ := dctx.Deadline()
	_ = conn.SetDeadline(deadline)
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return false
	}
	return strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH") || strings.HasPrefix(line, "-ERR")
}
