package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestFloorIsSetBesideTheCeilingOfTheRun(t *testing.T) {
	r := &report{
		Ceiling:        &pipelineReport{Drain: drainResult{ClientCPUus: 20}},
		GeneratedFloor: &floorReport{Jobs: 100, ClientCPUus: 8, AllocsPerJob: 48},
	}
	r.derive()
	assert.InDelta(t, 0.4, r.GeneratedFloor.VsCeiling, 1e-9)
	var out bytes.Buffer
	r.print(&out)
	assert.Contains(t, out.String(), "client CPU 8.0 µs/job, 48 allocs/job")
	assert.Contains(t, out.String(), "= 0.40 × the Redis ceiling's client CPU per job: the ceiling's work plus theirs alone is 1.40 × the ceiling (the client-CPU target allows 1.5)")
}

func TestFloorWithoutACeilingHasNoRatio(t *testing.T) {
	r := &report{GeneratedFloor: &floorReport{Jobs: 100, ClientCPUus: 8}}
	r.derive()
	assert.Zero(t, r.GeneratedFloor.VsCeiling)
	var out bytes.Buffer
	r.print(&out)
	assert.Contains(t, out.String(), "generated controllers alone")
	assert.NotContains(t, out.String(), "× the Redis ceiling")
}
