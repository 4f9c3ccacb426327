package process

import (
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// What one stop's look-ups at a process cost (docs/benchmarks.md, "Mass
// stop: where the time goes"): `go test -run '^$' -bench . ./internal/runtimes/process/`.

func benchChild(b *testing.B) int {
	cmd := exec.Command("sleep", "600")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd.Process.Pid
}

func BenchmarkProcStatRead(b *testing.B) {
	pid := benchChild(b)
	for b.Loop() {
		if _, err := readStat("/proc", pid); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProcStatusRead(b *testing.B) {
	pid := benchChild(b)
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	for b.Loop() {
		if _, err := os.ReadFile(path); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPidfdUIDs(b *testing.B) {
	p := openPidfd(benchChild(b))
	if p == nil {
		b.Skip("no pidfd_open here")
	}
	defer p.close()
	if _, err := p.uids(); err != nil {
		b.Skip(err)
	}
	for b.Loop() {
		if _, err := p.uids(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPidfdOpenClose(b *testing.B) {
	pid := benchChild(b)
	for b.Loop() {
		p := openPidfd(pid)
		if p == nil {
			b.Skip("no pidfd_open here")
		}
		p.close()
	}
}
