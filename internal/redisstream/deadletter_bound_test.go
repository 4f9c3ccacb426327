package redisstream

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func deadHeader(errText string) []string {
	return []string{"dead_reason", "undecodable", "dead_error", errText, "original_id", "1-1", "delivery_count", "1", "dead_at_ms", "5"}
}

func TestBoundDeadLetterKeepsOrdinaryOnesWhole(t *testing.T) {
	f := append(deadHeader("bad"), "game_id", "g1", "reason", "game_finished")
	got := boundDeadLetter(f, contractCodec(t, "runtime:stop_jobs"), 64)
	assert.Equal(t, f, got)
}

func TestBoundDeadLetterCutsValuesFieldsAndError(t *testing.T) {
	c := contractCodec(t, "runtime:stop_jobs")
	f := deadHeader(strings.Repeat("e", 200))
	for i := 0; i < 3000; i++ {
		f = append(f, fmt.Sprintf("x%04d", i), "v")
	}
	f = append(f, "reason", strings.Repeat("é", 100), "game_id", "g1", deadName("dead_truncated"), "spoof")
	got := boundDeadLetter(f, c, 64)

	m := map[string]string{}
	for i := 0; i+1 < len(got); i += 2 {
		m[got[i]] = got[i+1]
	}
	assert.Len(t, m["dead_error"], 64)
	assert.Equal(t, "g1", m["game_id"], "known fields go first")
	assert.LessOrEqual(t, len(m["reason"]), 64)
	assert.True(t, utf8.ValidString(m["reason"]), "not cut inside a character")
	assert.Equal(t, "spoof", m["original.dead_truncated"])
	require.Contains(t, m, "dead_truncated")
	assert.Contains(t, m["dead_truncated"], "copied 1024 of 3003 fields")
	assert.Contains(t, m["dead_truncated"], "dead_error cut")
	assert.Len(t, got, deadHeaderItems+2*deadMaxFields+2)
	assert.LessOrEqual(t, len(got), maxPublicationItems)
}

func TestBoundDeadLetterBoundsTotalBytes(t *testing.T) {
	f := deadHeader("bad")
	big := strings.Repeat("v", 64<<10)
	for i := 0; i < 100; i++ {
		f = append(f, fmt.Sprintf("f%d", i), big)
	}
	got := boundDeadLetter(f, nil, 64<<10)
	total := 0
	for _, s := range got[deadHeaderItems : len(got)-2] {
		total += len(s)
	}
	assert.LessOrEqual(t, total, deadMaxBytes)
	assert.Equal(t, "dead_truncated", got[len(got)-2])
}

func TestDeadHeaderItemsAreTheDeadLetterFields(t *testing.T) {
	assert.Equal(t, deadHeaderItems, 2*len(DeadLetterFields()))
	assert.Equal(t, FieldDeadReason, DeadLetterFields()[0], "boundDeadLetter knows a dead letter by it")
	assert.Equal(t, FieldDeadError, DeadLetterFields()[1], "boundDeadLetter cuts item 3, its value")
}
