package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// processStart is near the runtime's own start, the clock of
// GODEBUG=gctrace=1's "@<seconds>s" (a few milliseconds apart), so a
// latency run's samples can be laid beside rtbench's garbage collections.
var processStart = time.Now()

// latSample is one job of a latency run: when it was sent, seconds since
// processStart, and its latency.
type latSample struct {
	sentS float64
	ms    float64
}

// writeLatencyCSV writes the samples of one latency run, in the order they
// were sent, to dir/<pipeline>-<percent>.csv.
func writeLatencyCSV(dir, pipeline string, fraction float64, samples []latSample) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("latency csv: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%.0f.csv", pipeline, fraction*100))
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("latency csv: %w", err)
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i].sentS < samples[j].sentS })
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "sent_s,latency_ms")
	for _, s := range samples {
		fmt.Fprintf(w, "%.4f,%.3f\n", s.sentS, s.ms)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", fmt.Errorf("latency csv: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("latency csv: %w", err)
	}
	return path, nil
}
