package stopjobs_test

import (
	"context"
	"testing"

	"galaxy/rtmanager/internal/genfloor"
)

// BenchmarkGeneratedControllerFloor is what the generated controllers alone
// cost a stop job and its answer (package genfloor): `cpu-µs/msg` is the
// process's CPU per message, to set beside rtbench's client CPU per job
// (rtbench measures the same in each run, `generated_floor`).
func BenchmarkGeneratedControllerFloor(b *testing.B) {
	b.ReportAllocs()
	res, err := genfloor.Run(context.Background(), b.N)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(res.CPUPerMsg(), "cpu-µs/msg")
}
