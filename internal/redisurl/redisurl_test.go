package redisurl_test

import (
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"galaxy/rtmanager/internal/redisurl"
)

// leaks reports whether s holds the secret in any form a message could
// carry it: raw, escaped, Go-quoted, or a 3-byte piece of any of them (as
// url.Parse's "invalid URL escape %zz" would quote).
func leaks(s, secret string) bool {
	q := strconv.Quote(secret)
	for _, f := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret), q[1 : len(q)-1]} {
		if strings.Contains(s, f) {
			return true
		}
	}
	return false
}

func TestParseErrorsNeverShowThePassword(t *testing.T) {
	cases := map[string]struct{ url, secret string }{
		"quote and bad escape":  {`redis://u:s3"cr3t%zz@127.0.0.1:1/0`, `s3"cr3t`},
		"bad escape only":       {`redis://u:hunter2%zz@127.0.0.1:1/0`, `hunter2`},
		"control character":     {"redis://u:hunt\x01er2@127.0.0.1:1/0", "hunt\x01er2"},
		"newline":               {"redis://u:hunter2\n@127.0.0.1:1/0", "hunter2"},
		"bad port":              {`redis://u:hunter2@127.0.0.1:port/0`, `hunter2`},
		"bad db":                {`redis://u:hunter2@127.0.0.1:1/zero`, `hunter2`},
		"bad scheme":            {`http://u:hunter2@127.0.0.1:1/0`, `hunter2`},
		"unknown query option":  {`redis://u:hunter2@127.0.0.1:1/0?hunter2=1`, `hunter2`},
		"password in the space": {`redis://u:hunter 2@127.0.0.1:1/0`, `hunter 2`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := redisurl.Parse(c.url)
			require.Error(t, err)
			assert.False(t, leaks(err.Error(), c.secret), "error shows the password: %q", err.Error())
			if !strings.Contains(c.url, "?") { // Redacted hides the user info, not the query
				assert.False(t, leaks(redisurl.Redacted(c.url), c.secret), "redacted URL shows the password: %q", redisurl.Redacted(c.url))
			}
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestParseGoodURL(t *testing.T) {
	o, err := redisurl.Parse("rediss://u:p%40ss@127.0.0.1:6380/3")
	require.NoError(t, err)
	assert.Equal(t, "p@ss", o.Password)
	assert.Equal(t, 3, o.DB)
	assert.NotNil(t, o.TLSConfig)
	assert.Equal(t, "rediss://u:xxxxx@127.0.0.1:6380/3", redisurl.Redacted("rediss://u:p%40ss@127.0.0.1:6380/3"))
	_, err = redisurl.Parse("unix:///tmp/redis.sock")
	require.Error(t, err)
}

func TestScrub(t *testing.T) {
	raw := "redis://u:p%41ss%22@h:1/0" // password pAss"
	got := redisurl.Scrub(`a pAss" b p%41ss%22 c "pAss\"" d`, raw)
	assert.NotContains(t, got, `pAss`)
	assert.NotContains(t, got, `p%41ss`)
}

func TestParseClusterErrorsNeverShowThePassword(t *testing.T) {
	cases := map[string]struct{ url, secret string }{
		"quote and bad escape": {`redis+cluster://u:s3"cr3t%zz@127.0.0.1:1?addr=127.0.0.1:2`, `s3"cr3t`},
		"control character":    {"rediss+cluster://u:hunt\x01er2@127.0.0.1:1", "hunt\x01er2"},
		"bad port":             {`redis+cluster://u:hunter2@127.0.0.1:port`, `hunter2`},
		"bad addr":             {`redis+cluster://u:hunter2@127.0.0.1:1?addr=hunter2`, `hunter2`},
		"database path":        {`redis+cluster://u:hunter2@127.0.0.1:1/3`, `hunter2`},
		"single-node scheme":   {`redis://u:hunter2@127.0.0.1:1`, `hunter2`},
		"unknown query option": {`redis+cluster://u:hunter2@127.0.0.1:1?hunter2=1`, `hunter2`},
		"no host":              {`redis+cluster://u:hunter2@`, `hunter2`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := redisurl.ParseCluster(c.url)
			require.Error(t, err)
			assert.False(t, leaks(err.Error(), c.secret), "error shows the password: %q", err.Error())
			if !strings.Contains(c.url, "?") {
				assert.False(t, leaks(redisurl.Redacted(c.url), c.secret), "redacted URL shows the password: %q", redisurl.Redacted(c.url))
			}
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestParseClusterGoodURL(t *testing.T) {
	raw := "rediss+cluster://u:p%40ss@127.0.0.1:7000?addr=127.0.0.1:7001&addr=[::1]:7002"
	require.True(t, redisurl.IsCluster(raw))
	o, err := redisurl.ParseCluster(raw)
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:7000", "127.0.0.1:7001", "[::1]:7002"}, o.Addrs)
	assert.Equal(t, "u", o.Username)
	assert.Equal(t, "p@ss", o.Password)
	assert.NotNil(t, o.TLSConfig)
	assert.Equal(t, "rediss+cluster://u:xxxxx@127.0.0.1:7000?addr=127.0.0.1:7001&addr=[::1]:7002", redisurl.Redacted(raw))

	o, err = redisurl.ParseCluster("redis+cluster://127.0.0.1:7000/0")
	require.NoError(t, err)
	assert.Equal(t, []string{"127.0.0.1:7000"}, o.Addrs)
	assert.Nil(t, o.TLSConfig)

	assert.False(t, redisurl.IsCluster("redis://127.0.0.1:7000"))
	_, err = redisurl.Parse("redis+cluster://127.0.0.1:7000")
	require.Error(t, err, "the single-node parser refuses a cluster URL")
}
