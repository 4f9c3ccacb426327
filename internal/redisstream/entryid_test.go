package redisstream_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"galaxy/rtmanager/internal/redisstream"
)

func TestParseEntryIDTakesWhatRedisTakes(t *testing.T) {
	id, ok := redisstream.ParseEntryID("18446744073709551615-0")
	assert.True(t, ok)
	assert.Equal(t, redisstream.EntryID{MS: 1<<64 - 1}, id)
	id, ok = redisstream.ParseEntryID("1700000000123-42")
	assert.True(t, ok)
	assert.Equal(t, redisstream.EntryID{MS: 1700000000123, Seq: 42}, id)
	for _, bad := range []string{"", "17", "-", "1-", "-1", "+1-0", "1-+0", "a-1", "1-2-3", "1_0-0", "18446744073709551616-0"} {
		_, ok := redisstream.ParseEntryID(bad)
		assert.False(t, ok, bad)
	}
}
