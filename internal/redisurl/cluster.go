package redisurl

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// The schemes of a Redis Cluster seed list. go-redis's ParseClusterURL
// reads redis:// with addr= parameters; a scheme of its own keeps a cluster
// URL from being taken for a single server's, and the other way round.
const (
	ClusterScheme    = "redis+cluster"
	ClusterTLSScheme = "rediss+cluster"
)

// IsCluster reports whether raw has a cluster scheme. It looks at the
// scheme only, so it never fails and never shows raw.
func IsCluster(raw string) bool {
	scheme, _, ok := strings.Cut(raw, "://")
	return ok && (strings.EqualFold(scheme, ClusterScheme) || strings.EqualFold(scheme, ClusterTLSScheme))
}

// ParseCluster parses redis+cluster://[user:password@]host:port?addr=host:port&addr=…
// (rediss+cluster:// for TLS) into cluster client options: the host and
// every addr are seeds. Its errors never contain the password, in any form.
func ParseCluster(raw string) (*redis.ClusterOptions, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a valid URL (%s); percent-encode reserved characters of the user and password", describe(err))
	}
	var plain string
	switch strings.ToLower(u.Scheme) {
	case ClusterScheme:
		plain = "redis"
	case ClusterTLSScheme:
		plain = "rediss"
	default:
		return nil, fmt.Errorf("scheme %q: want %s or %s", u.Scheme, ClusterScheme, ClusterTLSScheme)
	}
	// A cluster has database 0 only; go-redis would ignore a path.
	if p := strings.TrimPrefix(u.Path, "/"); p != "" && p != "0" {
		return nil, errors.New("a cluster URL takes no database path (a cluster has database 0 only)")
	}
	if u.Host == "" {
		return nil, errors.New("no seed host:port")
	}
	_, rest, _ := strings.Cut(raw, "://")
	opts, err := redis.ParseClusterURL(plain + "://" + rest)
	if err != nil {
		return nil, errors.New(Scrub(err.Error(), raw))
	}
	return opts, nil
}
