package main

import (
	"context"
	"fmt"
	"io"

	"galaxy/rtmanager/internal/genfloor"
)

// floorReport is what the generated controllers alone cost a stop job and
// its answer (package genfloor), in rtbench's process like the in-process
// pipelines and the ceiling: the floor under the client CPU per job of any
// consumer that keeps them in its path, as issue 16 has rtmanager do.
type floorReport struct {
	Jobs             int     `json:"jobs"`
	ClientCPUus      float64 `json:"client_cpu_us_per_job"`
	AllocsPerJob     float64 `json:"allocs_per_job"`
	AllocBytesPerJob float64 `json:"alloc_bytes_per_job"`
	// VsCeiling is ClientCPUus over the Redis ceiling's client CPU per job
	// in this run's drain (0 when the ceiling was skipped): 1 + VsCeiling
	// is where a consumer doing the ceiling's work and, beyond it, only
	// the generated controllers' would stand against the ceiling.
	VsCeiling float64 `json:"vs_ceiling_client_cpu,omitempty"`
}

// generatedFloor measures cfg.Jobs messages after an unmeasured warm-up
// of cfg.Warmup (at most cfg.Jobs), as the drains do.
func generatedFloor(ctx context.Context, cfg config) (*floorReport, error) {
	if w := min(cfg.Warmup, cfg.Jobs); w > 0 {
		if _, err := genfloor.Run(ctx, w); err != nil {
			return nil, fmt.Errorf("generated controllers' floor: warm-up: %w", err)
		}
	}
	res, err := genfloor.Run(ctx, cfg.Jobs)
	if err != nil {
		return nil, fmt.Errorf("generated controllers' floor: %w", err)
	}
	return &floorReport{Jobs: res.Messages, ClientCPUus: res.CPUPerMsg(), AllocsPerJob: res.AllocsPerMsg(), AllocBytesPerJob: res.BytesPerMsg()}, nil
}

func (f *floorReport) print(w io.Writer) {
	fmt.Fprintf(w, "\ngenerated controllers alone (%d stop jobs and answers through them, in-memory broker, no Redis; --skip floor): client CPU %.1f µs/job, %.0f allocs/job\n",
		f.Jobs, f.ClientCPUus, f.AllocsPerJob)
	if f.VsCeiling > 0 {
		fmt.Fprintf(w, "  = %.2f × the Redis ceiling's client CPU per job: the ceiling's work plus theirs alone is %.2f × the ceiling (the client-CPU target allows %.1f)\n",
			f.VsCeiling, 1+f.VsCeiling, targetClientCPU)
	}
}
