package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
)

// s3Env returns the S3 target of the real test server (scripts/test.sh
// starts versitygw), or "" when it is not configured.
func s3Env(t *testing.T) (string, map[string]string) {
	ep := os.Getenv("ENGRAM_TEST_S3_ENDPOINT")
	if ep == "" {
		return "", nil
	}
	env := map[string]string{
		"ENGRAM_S3_ENDPOINT":          ep,
		"ENGRAM_S3_ACCESS_KEY_ID":     os.Getenv("ENGRAM_TEST_S3_ACCESS_KEY"),
		"ENGRAM_S3_SECRET_ACCESS_KEY": os.Getenv("ENGRAM_TEST_S3_SECRET_KEY"),
		"ENGRAM_S3_REGION":            "us-east-1",
		"ENGRAM_S3_PATH_STYLE":        "1",
	}
	if !strings.HasPrefix(ep, "https://") {
		env["ENGRAM_S3_INSECURE"] = "1"
	}
	prefix := fmt.Sprintf("cycle-%d", time.Now().UnixNano())
	return "s3://" + os.Getenv("ENGRAM_TEST_S3_BUCKET") + "/" + prefix, env
}

// TestBackupFullCycle is the "done when": serve with shipping, write,
// forget one by accident, write more, restore to the second before the
// deletion, and the deleted memory is back and everything after is not.
func TestBackupFullCycle(t *testing.T) {
	t.Run("file", func(t *testing.T) {
		fullCycle(t, "file://"+filepath.ToSlash(t.TempDir()), nil)
	})
	t.Run("s3", func(t *testing.T) {
		target, env := s3Env(t)
		if target == "" {
			t.Skip("ENGRAM_TEST_S3_ENDPOINT is not set: the S3 cycle runs under `make test` (scripts/test.sh starts versitygw)")
		}
		fullCycle(t, target, env)
	})
}

func fullCycle(t *testing.T, target string, env map[string]string) {
	ctx := context.Background()
	dataDir := t.TempDir()
	srv := startServeEnv(t, dataDir, env, "--backup-to", target, "--backup-interval", "50ms", "--snapshot-interval", "0s")
	put := func(id, content string) {
		t.Helper()
		if _, err := srv.c.Remember(ctx, api.RememberRequest{ID: id, Content: content}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 10; i++ {
		put(fmt.Sprintf("before-%d", i), fmt.Sprintf("a memory about the sea number %d", i))
	}
	// The moment to return to: a whole second after the last write before it.
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 50*time.Millisecond)))
	moment := time.Now().UTC().Truncate(time.Second)
	time.Sleep(time.Until(moment.Add(time.Second + 50*time.Millisecond)))
	if _, err := srv.c.Forget(ctx, "before-3"); err != nil {
		t.Fatal(err)
	}
	put("after-1", "written after the accident")

	// Admin endpoint: status, then a snapshot of the running server.
	resp, err := http.Get(srv.base + "/api/v1/admin/backup")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Target  string `json:"target"`
		Running bool   `json:"running"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.StatusCode != 200 || !st.Running {
		t.Fatalf("backup status %d %+v", resp.StatusCode, st)
	}
	code, out, errOut := runCLI(t, env, "backup", "create", "--server", srv.base)
	if code != 0 {
		t.Fatalf("backup create --server: %d %s %s", code, out, errOut)
	}
	put("after-2", "written after the second snapshot")
	if code := srv.stop(); code != 0 {
		t.Fatalf("serve exited %d:\n%s", code, srv.stderr.String())
	}
	metricsOK := strings.Contains(srv.stderr.String(), "backup shipping started")
	if !metricsOK {
		t.Fatalf("shipper did not start:\n%s", srv.stderr.String())
	}

	// Point-in-time restore into a new directory.
	dest := filepath.Join(t.TempDir(), "pitr")
	code, out, errOut = runCLI(t, env, "restore", "--from", target, "--data-dir", dest,
		"--to-time", moment.Format(time.RFC3339), "--output", "json")
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s\n%s", code, out, errOut)
	}
	var rep struct {
		Snapshot       string  `json:"snapshot"`
		ChangesApplied int     `json:"changes_applied"`
		Seconds        float64 `json:"seconds"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("restore json: %v\n%s", err, out)
	}
	t.Logf("restore took %.3fs, snapshot %s, %d changes replayed", rep.Seconds, rep.Snapshot, rep.ChangesApplied)
	got := listIDs(t, dest)
	for i := 0; i < 10; i++ {
		if !got[fmt.Sprintf("before-%d", i)] {
			t.Errorf("before-%d missing after PITR (the forgotten one is before-3)", i)
		}
	}
	if got["after-1"] || got["after-2"] {
		t.Errorf("PITR restored memories written after the moment: %v", got)
	}

	// Latest: everything, including the forget.
	latest := filepath.Join(t.TempDir(), "latest")
	if code, out, errOut := runCLI(t, env, "restore", "--from", target, "--data-dir", latest); code != 0 {
		t.Fatalf("restore latest: %d %s %s", code, out, errOut)
	}
	got = listIDs(t, latest)
	if got["before-3"] || !got["after-1"] || !got["after-2"] {
		t.Errorf("latest restore: %v", got)
	}

	// Refusals: non-empty destination, a time before the first snapshot.
	code, _, errOut = runCLI(t, env, "restore", "--from", target, "--data-dir", latest)
	if code != 1 || !strings.Contains(errOut, "not empty") {
		t.Errorf("non-empty destination: exit %d %s", code, errOut)
	}
	early := filepath.Join(t.TempDir(), "early")
	code, _, errOut = runCLI(t, env, "restore", "--from", target, "--data-dir", early, "--to-time", "2001-01-01T00:00:00Z")
	if code != 1 || !strings.Contains(errOut, "no snapshot at or before") {
		t.Errorf("time before first snapshot: exit %d %s", code, errOut)
	}
	if _, err := os.Stat(early); !os.IsNotExist(err) {
		t.Errorf("failed restore created %s", early)
	}
	// A filesystem under the reserve (here: a reserve larger than any disk).
	full := filepath.Join(t.TempDir(), "full")
	code, _, errOut = runCLI(t, env, "restore", "--from", target, "--data-dir", full, "--min-free-space", "1TiB")
	if code != 1 || !strings.Contains(errOut, "INSUFFICIENT_STORAGE") && !strings.Contains(errOut, "min_free_space") {
		t.Errorf("restore under the reserve: exit %d %s", code, errOut)
	}
	if _, err := os.Stat(full); !os.IsNotExist(err) {
		t.Errorf("restore under the reserve created %s", full)
	}

	// list, inspect, verify.
	code, out, _ = runCLI(t, env, "backup", "list", "--from", target, "--output", "json")
	if code != 0 || !strings.Contains(out, `"snapshots"`) {
		t.Fatalf("list: %d %s", code, out)
	}
	for _, level := range []string{"1", "2", "4"} {
		code, out, errOut = runCLI(t, env, "backup", "verify", "--from", target, "--level", level)
		if code != 0 {
			t.Errorf("verify level %s: exit %d\n%s\n%s", level, code, out, errOut)
		}
	}
	verifyCache(t, target, env)
	prune(t, target, env)
}

// verifyCache: level 2 checks everything by default; with --cache a second
// verification of an unchanged archive downloads nothing, a run without it
// checks everything again, and the result is recorded on the target for
// servers.
func verifyCache(t *testing.T, target string, env map[string]string) {
	e := map[string]string{"XDG_CACHE_HOME": t.TempDir()}
	for k, v := range env {
		e[k] = v
	}
	type rep struct {
		Checked  int    `json:"checked"`
		Cached   int    `json:"cached"`
		Recorded string `json:"recorded"`
	}
	run := func(args ...string) rep {
		t.Helper()
		code, out, errOut := runCLI(t, e, append([]string{"backup", "verify", "--from", target, "--level", "2", "--output", "json"}, args...)...)
		var r rep
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
			t.Fatalf("verify: %d %s %s", code, out, errOut)
		}
		return r
	}
	first := run()
	filled := run("--cache")
	second := run("--cache")
	again := run()
	if first.Checked == 0 || first.Cached != 0 || filled.Checked != first.Checked || filled.Cached != 0 ||
		second.Checked != 0 || second.Cached != first.Checked || again.Checked != first.Checked || again.Cached != 0 {
		t.Errorf("verify cache: default %+v, --cache %+v then %+v, default again %+v", first, filled, second, again)
	}
	if first.Recorded != "verify/last.json" {
		t.Errorf("verify result not recorded: %+v", first)
	}
}

// prune: refusal without --yes, a dry run that deletes nothing, then a
// real prune to the newest snapshot after which the latest state still
// restores.
func prune(t *testing.T, target string, env map[string]string) {
	code, _, errOut := runCLI(t, env, "backup", "prune", "--from", target, "--keep-last", "1")
	if code != 2 || !strings.Contains(errOut, "--yes") {
		t.Fatalf("prune without --yes: exit %d %s", code, errOut)
	}
	listCount := func() int {
		t.Helper()
		code, out, errOut := runCLI(t, env, "backup", "list", "--from", target, "--output", "json")
		var l struct {
			Snapshots []json.RawMessage `json:"snapshots"`
		}
		if code != 0 || json.Unmarshal([]byte(out), &l) != nil {
			t.Fatalf("list: %d %s %s", code, out, errOut)
		}
		return len(l.Snapshots)
	}
	before := listCount()
	if before < 2 {
		t.Fatalf("%d snapshots before prune, want at least 2", before)
	}
	code, out, errOut := runCLI(t, env, "backup", "prune", "--from", target, "--keep-last", "1", "--dry-run")
	if code != 0 || !strings.Contains(out, "would delete") || !strings.Contains(out, "newest, last 1") {
		t.Fatalf("prune --dry-run: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := listCount(); n != before {
		t.Fatalf("dry run deleted snapshots: %d -> %d", before, n)
	}
	code, out, errOut = runCLI(t, env, "backup", "prune", "--from", target, "--keep-last", "1", "--yes", "--output", "json")
	var plan struct {
		Done      bool `json:"done"`
		Snapshots []struct {
			Keep bool `json:"keep"`
		} `json:"snapshots"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &plan) != nil || !plan.Done || len(plan.Snapshots) != before {
		t.Fatalf("prune --yes: exit %d\n%s\n%s", code, out, errOut)
	}
	if n := listCount(); n != 1 {
		t.Fatalf("%d snapshots after prune --keep-last 1", n)
	}
	latest := filepath.Join(t.TempDir(), "after-prune")
	if code, out, errOut := runCLI(t, env, "restore", "--from", target, "--data-dir", latest); code != 0 {
		t.Fatalf("restore after prune: %d %s %s", code, out, errOut)
	}
	got := listIDs(t, latest)
	if got["before-3"] || !got["after-1"] || !got["after-2"] || !got["before-4"] {
		t.Errorf("restore after prune: %v", got)
	}
	if code, out, errOut := runCLI(t, env, "backup", "verify", "--from", target, "--level", "2"); code != 0 {
		t.Errorf("verify after prune: %d %s %s", code, out, errOut)
	}
}

func listIDs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	eng, err := core.Open(dir, core.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	res, err := eng.List(context.Background(), "default", core.ListOptions{AllTiers: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range res.Memories {
		out[m.ID] = true
	}
	return out
}

// TestBackupRPOUnderLoad measures the recovery point while the server takes
// ENGRAM_BENCH_RPO_RATE remembers/s (default 1000) for
// ENGRAM_BENCH_RPO_SECONDS (default 20), shipping with the default
// --backup-interval (1s). It is a benchmark, run by scripts/bench.sh backup
// (ENGRAM_BENCH_RPO=1); plain `go test` skips it.
//
// RPO at an instant t is what a disaster at t would lose: t minus the
// commit time (the response's stored_at, the engine clock the change log
// records) of the oldest write committed before t whose sequence is above
// the shipped sequence on the target (engram_backup_shipped_sequence, set
// once a segment is stored), 0 when none. The same with the client's send
// time instead of the commit time (an upper bound that includes request
// queueing) is reported next to it.
// /metrics is sampled every 10ms; the server's own engram_backup_rpo_seconds
// gauge (updated once per shipping round) is reported next to it.
func TestBackupRPOUnderLoad(t *testing.T) {
	if os.Getenv("ENGRAM_BENCH_RPO") == "" {
		t.Skip("a benchmark: ENGRAM_BENCH_RPO=1 go test -run TestBackupRPOUnderLoad -v ./cmd/engram-ops/ (scripts/bench.sh backup)")
	}
	t.Run("file", func(t *testing.T) { rpoUnderLoad(t, "file://"+filepath.ToSlash(t.TempDir()), nil) })
	t.Run("s3", func(t *testing.T) {
		target, env := s3Env(t)
		if target == "" {
			t.Skip("ENGRAM_TEST_S3_ENDPOINT is not set")
		}
		rpoUnderLoad(t, target, env)
	})
}

func envOr(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func rpoUnderLoad(t *testing.T, target string, env map[string]string) {
	rate := envOr("ENGRAM_BENCH_RPO_RATE", 1000)
	dur := time.Duration(envOr("ENGRAM_BENCH_RPO_SECONDS", 20)) * time.Second
	srv := startServeEnv(t, t.TempDir(), env, "--backup-to", target, "--snapshot-interval", "0s")
	ctx, cancel := context.WithTimeout(context.Background(), dur+30*time.Second)
	defer cancel()

	type write struct {
		seq          uint64
		sent, stored time.Time
	}
	var (
		mu     sync.Mutex
		writes []write
		failed int
	)
	type sample struct {
		at      time.Time
		shipped uint64
		gauge   float64
	}
	var samples []sample
	scrape := func() (uint64, float64, bool) {
		resp, err := http.Get(srv.base + "/metrics")
		if err != nil {
			return 0, 0, false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var shipped uint64
		var gauge float64
		for _, line := range strings.Split(string(body), "\n") {
			// name{labels} value; label values may hold spaces.
			end := strings.LastIndexByte(line, '}')
			if end < 0 {
				continue
			}
			v, err := strconv.ParseFloat(strings.TrimSpace(line[end+1:]), 64)
			if err != nil {
				continue
			}
			switch {
			case strings.HasPrefix(line, "engram_backup_shipped_sequence{"):
				shipped = uint64(v)
			case strings.HasPrefix(line, "engram_backup_rpo_seconds{"):
				gauge = v
			}
		}
		return shipped, gauge, true
	}
	// Wait until shipping started (the first snapshot is taken at start).
	for deadline := time.Now().Add(30 * time.Second); ; {
		if !strings.Contains(srv.stderr.String(), "backup shipping started") {
			if time.Now().After(deadline) {
				t.Fatalf("shipping did not start:\n%s", srv.stderr.String())
			}
			time.Sleep(50 * time.Millisecond)
			continue
		}
		break
	}

	// Open-loop driver: one send every 1/rate, on up to 64 workers.
	sends := make(chan time.Time, 4096)
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sent := range sends {
				res, err := srv.c.Remember(ctx, api.RememberRequest{Content: "rpo probe written at " + sent.Format(time.RFC3339Nano)})
				mu.Lock()
				if err != nil {
					failed++
				} else {
					writes = append(writes, write{res.Sequence, sent, res.StoredAt})
				}
				mu.Unlock()
			}
		}()
	}
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tk := time.NewTicker(10 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopSampling:
				return
			case <-tk.C:
				at := time.Now()
				if shipped, gauge, ok := scrape(); ok {
					samples = append(samples, sample{at, shipped, gauge})
				}
			}
		}
	}()
	start := time.Now()
	dropped := 0
	interval := time.Second / time.Duration(rate)
	for next := start; time.Since(start) < dur; next = next.Add(interval) {
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		select {
		case sends <- next:
		default:
			dropped++ // every worker busy and the queue full: the server is saturated
		}
	}
	close(sends)
	wg.Wait()
	achieved := float64(len(writes)) / time.Since(start).Seconds()
	// Let the last round ship, then stop sampling.
	time.Sleep(2 * time.Second)
	close(stopSampling)
	<-sampled

	sort.Slice(writes, func(i, j int) bool { return writes[i].seq < writes[j].seq })
	// sufMin(i): the earliest send / store time among writes[i:].
	suffix := func(at func(write) time.Time) []time.Time {
		m := make([]time.Time, len(writes)+1)
		m[len(writes)] = time.Now().Add(time.Hour)
		for i := len(writes) - 1; i >= 0; i-- {
			m[i] = m[i+1]
			if at(writes[i]).Before(m[i]) {
				m[i] = at(writes[i])
			}
		}
		return m
	}
	bySent := suffix(func(w write) time.Time { return w.sent })
	byStored := suffix(func(w write) time.Time { return w.stored })
	var rpo, rpoSent, gauges []float64
	for _, s := range samples {
		if s.at.Before(start) || s.at.After(start.Add(dur)) {
			continue
		}
		i := sort.Search(len(writes), func(i int) bool { return writes[i].seq > s.shipped })
		age := func(m []time.Time) float64 {
			if oldest := m[i]; oldest.Before(s.at) {
				return s.at.Sub(oldest).Seconds()
			}
			return 0
		}
		rpo = append(rpo, age(byStored))
		rpoSent = append(rpoSent, age(bySent))
		gauges = append(gauges, s.gauge)
	}
	if len(rpo) == 0 {
		t.Fatal("no samples")
	}
	pct := func(v []float64, p float64) float64 {
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		return s[min(len(s)-1, int(p*float64(len(s))))]
	}
	t.Logf("RPO %s: offered %d writes/s for %s, achieved %.0f/s (%d failed, %d sends dropped); %d samples: "+
		"RPO by commit (stored_at) time p50 %.3fs p99 %.3fs max %.3fs; by client send time p50 %.3fs p99 %.3fs; "+
		"engram_backup_rpo_seconds gauge p50 %.3fs p99 %.3fs",
		target, rate, dur, achieved, failed, dropped, len(rpo), pct(rpo, 0.5), pct(rpo, 0.99), pct(rpo, 1),
		pct(rpoSent, 0.5), pct(rpoSent, 0.99), pct(gauges, 0.5), pct(gauges, 0.99))
	if os.Getenv("ENGRAM_BENCH_RPO_LOG") != "" {
		t.Log(srv.stderr.String())
	}
	if failed > 0 || achieved < 0.9*float64(rate) {
		t.Logf("WARNING: the offered load was not sustained; the RPO figure is for %.0f writes/s", achieved)
	}
}

func TestServerDrill(t *testing.T) {
	ctx := context.Background()
	eng, err := core.Open(t.TempDir(), core.Options{DefaultDimension: 32, Tiers: core.TierOptions{SweepInterval: -1}})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for i, c := range []string{"the lighthouse keeper logs the storm", "copper violins in the winter market", "a glacier moves slowly"} {
		if _, err := eng.Remember(ctx, "drill", core.RememberInput{ID: fmt.Sprintf("d%d", i), Content: c}); err != nil {
			t.Fatal(err)
		}
	}
	if err := eng.WaitIndexed(ctx); err != nil {
		t.Fatal(err)
	}
	m := &backup.Manifest{Spaces: []backup.Space{{Name: "drill", Memories: 3}, {Name: "empty"}}}
	if err := serverDrill(ctx, eng, m); err != nil {
		t.Fatalf("drill on a good engine: %v", err)
	}
	m.Spaces = append(m.Spaces, backup.Space{Name: "lost", Memories: 5})
	if err := serverDrill(ctx, eng, m); err == nil || !strings.Contains(err.Error(), "lost") {
		t.Fatalf("drill with a space the restore lacks: %v", err)
	}
}
