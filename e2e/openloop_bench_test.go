package e2e

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/engram-ops/engram-ops/loadtest"
)

// BenchmarkHTTPRememberOpenLoop offers durable remembers at fixed rates with
// the load tester (open model, a separate process, latency from the
// intended send time) against the real binary, after the rate of the
// trivial /health/alive handler measured by `loadtest calibrate` against
// the same server in the same run (the ceiling). The server runs without
// the access log, as a high-throughput deployment would, and without the
// bound on the index backlog (see BenchmarkHTTPRemember).
func BenchmarkHTTPRememberOpenLoop(b *testing.B) {
	s := startServer(b, b.TempDir(), "--no-access-log", "--set", "index.max_pending=0")
	out, err := exec.Command(binPath, "loadtest", "calibrate", "--target", s.URL, "--rounds", "1", "--phase", "3s",
		"--check-duration", "3s", "--output", "json", "--quiet").Output()
	if err != nil {
		b.Fatalf("calibrate: %v\n%s", err, out)
	}
	var cal struct {
		TightLoopRate float64 `json:"tight_loop_rate"`
		GeneratorRate float64 `json:"generator_rate"`
	}
	if err := json.Unmarshal(out, &cal); err != nil {
		b.Fatalf("calibrate output: %v\n%s", err, out)
	}
	b.Logf("ceiling /health/alive: tight net/http loop %.0f req/s, generator %.0f req/s", cal.TightLoopRate, cal.GeneratorRate)
	for _, rate := range []int{2500, 5000} {
		result := filepath.Join(b.TempDir(), "r.json")
		cmd := exec.Command(binPath, "loadtest", "run", filepath.Join("testdata", "remember_open_loop.toml"),
			"--rate", strconv.Itoa(rate), "--target", s.URL, "--out", result, "--quiet")
		if out, err := cmd.CombinedOutput(); err != nil {
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
				b.Fatalf("loadtest run: %v\n%s", err, out)
			}
		}
		r, err := loadtest.ReadResult(result)
		if err != nil {
			b.Fatal(err)
		}
		op := r.Op("store")
		if op == nil {
			b.Fatal("no store operation in the result")
		}
		late := 0.0
		if r.Scheduled > 0 {
			late = float64(r.Audit.LateSends) / float64(r.Scheduled)
		}
		b.Logf("remember at %d/s: achieved %.0f/s, errors %d, corrected p50 %.2f ms p99 %.2f ms p99.9 %.2f ms (uncorrected p99 %.2f ms); late sends %.2f%%, limited by %s; ratio to ceiling %.2f",
			rate, r.AchievedRate, r.Errors, op.Corrected.P50MS, op.Corrected.P99MS, op.Corrected.P999MS, op.Uncorrected.P99MS,
			late*100, r.Audit.LimitedBy, r.AchievedRate/cal.TightLoopRate)
	}
}
