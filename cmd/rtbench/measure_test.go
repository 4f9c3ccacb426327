package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestEntryLatenciesAreResultIDLessJobIDInMilliseconds(t *testing.T) {
	now := time.Now()
	sent := map[string]time.Time{"1000-0": now, "1000-1": now, "1002-5": now, "1003-0": now}
	results := map[string]string{
		"1000-0": "1003-0",
		"1000-1": "1001-7",
		"1002-5": "1010-0",
		// "1003-0" has no result yet: it is left out, not counted as 0.
		"999-0": "1000-0", // a result for a job this run did not send
	}
	assert.Equal(t, []float64{1, 3, 8}, entryLatencies(sent, results))
}

func TestQuantileIsNearestRank(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	assert.InDelta(t, 5.0, quantile(v, 0.5), 1e-9)
	assert.InDelta(t, 10.0, quantile(v, 0.99), 1e-9)
	assert.InDelta(t, 1.0, quantile(v, 0.01), 1e-9)
}
