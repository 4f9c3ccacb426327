package console

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

// An entry id Redis refuses (a part beyond 2^64-1), or 0-0 as the bound of
// the dead-letter page (no entry has it and "(0-0" is no interval), is the
// caller's mistake: 400 with what is wanted. Such ids went to Redis and came
// back as a 502 naming a Redis error. The largest id Redis takes is fine.
func TestEntryIDsRedisRefusesAreBadRequests(t *testing.T) {
	f := newFixture(t, Options{})
	const tooBig = "18446744073709551616"
	// Not a job id, but a game id: the game's page, which has none.
	for _, q := range []string{tooBig + "-0", "0-" + tooBig} {
		code, body := f.get("/jobs?q=" + q)
		assert.Equal(t, http.StatusNotFound, code, "%s: %s", q, body)
		assert.Contains(t, body, "<h1>Game "+q, q)
	}
	for _, path := range []string{
		"/jobs?q=0/" + tooBig + "-0",
		"/dead?before=" + tooBig + "-0",
		"/dead?before=0-0",
		"/jobs/live?after=" + tooBig + "-0",
	} {
		code, body := f.get(path)
		assert.Equal(t, http.StatusBadRequest, code, "%s: %s", path, body)
	}
	const largest = "18446744073709551615-18446744073709551615"
	for _, path := range []string{"/jobs?q=" + largest, "/jobs?q=007-0", "/dead?before=" + largest, "/dead?before=1-0"} {
		code, body := f.get(path)
		assert.Equal(t, http.StatusOK, code, "%s: %s", path, body)
	}
}
