// Package redisurl parses a --redis-url for rtmanager and rtmanagerctl so
// that no error or log text ever carries its password. url.Parse's errors
// quote the whole URL (escaped, so a plain string replace of the password
// misses it) and name the offending piece, which may be part of the
// password; so a URL that does not parse is described, never echoed.
package redisurl

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Parse parses a redis:// or rediss:// URL into client options. Its errors
// never contain the password, in any form.
func Parse(raw string) (*redis.Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("not a valid URL (%s); percent-encode reserved characters of the user and password", describe(err))
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, fmt.Errorf("scheme %q: want redis or rediss", u.Scheme)
	}
	opts, err := redis.ParseURL(raw)
	if err != nil {
		// go-redis names the path or query here, not the user info; scrub
		// anyway, so a future message cannot leak it.
		return nil, errors.New(Scrub(err.Error(), raw))
	}
	return opts, nil
}

// describe names what is wrong with a URL that url.Parse refused, in fixed
// words: its own error quotes the URL and pieces of it.
func describe(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "control character"):
		return "it contains a control character"
	case strings.Contains(s, "invalid userinfo"):
		return "invalid characters in the user or password"
	case strings.Contains(s, "invalid URL escape"):
		return "a % not followed by two hex digits"
	case strings.Contains(s, "invalid port"):
		return "invalid port"
	case strings.Contains(s, "missing protocol scheme"):
		return "no scheme"
	default:
		return "malformed"
	}
}

// Redacted is the URL with its password as xxxxx, for logs; a URL that does
// not parse is not shown at all.
func Redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// Scrub replaces the password of raw in s: as decoded, as written in raw,
// escaped as url would write it, and Go-quoted.
func Scrub(s, raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return s
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" {
		return s
	}
	quoted := strconv.Quote(pw)
	forms := []string{pw, url.QueryEscape(pw), url.PathEscape(pw), quoted[1 : len(quoted)-1]}
	if _, esc, ok := strings.Cut(u.User.String(), ":"); ok {
		forms = append(forms, esc)
	}
	if _, rest, ok := strings.Cut(raw, "://"); ok {
		authority, _, _ := strings.Cut(rest, "/")
		if at := strings.LastIndex(authority, "@"); at >= 0 {
			if _, written, ok := strings.Cut(authority[:at], ":"); ok {
				forms = append(forms, written)
			}
		}
	}
	for _, f := range forms {
		if f != "" {
			s = strings.ReplaceAll(s, f, "xxxxx")
		}
	}
	return s
}
