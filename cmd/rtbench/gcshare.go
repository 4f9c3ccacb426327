package main

import (
	"runtime/debug"
	"sort"
)

// gcShare tells how a latency run's slowest jobs line up with the garbage
// collections of the process they ran in (in-process pipelines only: the
// binary collects in its own process). A job counts as hit when a
// collection ended while it was in flight (between its send and its
// result). If the slowest 1 % are hit far more often than all jobs, the
// collector is what makes the p99.
type gcShare struct {
	Cycles int `json:"cycles"` // collections that ended during the run
	// Share of all jobs, and of the jobs at or above the p99, that were in
	// flight when a collection ended.
	AllHit  float64 `json:"all_hit"`
	TailHit float64 `json:"p99_tail_hit"`
}

// gcEnds is when each of this process's recent collections ended (its
// last stop-the-world pause), in seconds since processStart, ascending.
// The runtime keeps the last 256, more than a latency run sees.
func gcEnds() []float64 {
	var st debug.GCStats
	debug.ReadGCStats(&st)
	ends := make([]float64, 0, len(st.PauseEnd))
	for _, t := range st.PauseEnd {
		ends = append(ends, t.Sub(processStart).Seconds())
	}
	sort.Float64s(ends)
	return ends
}

// gcShares lays samples, whose p99 latency is p99, beside the collections
// that ended at ends.
func gcShares(samples []latSample, p99 float64, ends []float64) *gcShare {
	if len(samples) == 0 {
		return nil
	}
	first, last := samples[0].sentS, samples[0].sentS
	for _, s := range samples {
		first = min(first, s.sentS)
		last = max(last, s.sentS+s.ms/1000)
	}
	g := &gcShare{}
	for _, e := range ends {
		if e >= first && e <= last {
			g.Cycles++
		}
	}
	var all, tail, hitAll, hitTail int
	for _, s := range samples {
		// The first collection ending at or after the send.
		i := sort.SearchFloat64s(ends, s.sentS)
		hit := i < len(ends) && ends[i] <= s.sentS+s.ms/1000
		all++
		if hit {
			hitAll++
		}
		if s.ms >= p99 {
			tail++
			if hit {
				hitTail++
			}
		}
	}
	g.AllHit = float64(hitAll) / float64(all)
	g.TailHit = float64(hitTail) / float64(tail)
	return g
}
