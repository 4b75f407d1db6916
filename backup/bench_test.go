package backup_test

// Benchmarks of issue 3's performance targets; figures and commands are in
// docs/benchmarks.md ("Backup and restore") and scripts/bench.sh backup.
// The large ones are meant for -benchtime=1x: their setup (writing up to
// 100,000 memories) dwarfs the measured part, which each reports with
// b.ReportMetric.
//
//	ENGRAM_BENCH_MEMORIES  memories in BenchmarkRestoreReplay (default 100000)
//	ENGRAM_BENCH_DIM       embedding dimension (default 768)
//	ENGRAM_TEST_S3_*       S3 server for BenchmarkSnapshotUploadS3 (skipped when unset)

import (
	"bytes"
	"context"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/engram-ops/engram-ops/backup"
	"github.com/engram-ops/engram-ops/backup/file"
	"github.com/engram-ops/engram-ops/backup/target"
	"github.com/engram-ops/engram-ops/core"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func benchEngineOptions(dim int) core.Options {
	return core.Options{DefaultDimension: dim, Durability: core.DurabilityRelaxed, Tiers: core.TierOptions{SweepInterval: -1}}
}

var benchWords = []string{"river", "mountain", "ocean", "forest", "city", "engine", "signal", "memory", "protein", "galaxy", "harbor", "lantern",
	"winter", "storm", "copper", "violin", "garden", "orbit", "glacier", "market"}

func benchContent(r *rand.Rand, i int) string {
	var b bytes.Buffer
	for j := 0; j < 12; j++ {
		b.WriteString(benchWords[r.Intn(len(benchWords))])
		b.WriteByte(' ')
	}
	b.WriteString("note ")
	b.WriteString(strconv.Itoa(i))
	return b.String()
}

// fill writes memories from..to-1 (ids m<i>) in batches of 1000; with
// update, ids that exist are rewritten with new content.
func fill(b *testing.B, eng *core.Engine, r *rand.Rand, ids []int) {
	b.Helper()
	ctx := context.Background()
	var batch []core.RememberInput
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if _, err := eng.Batch(ctx, "default", core.BatchInput{Memories: batch}); err != nil {
			b.Fatal(err)
		}
		batch = batch[:0]
	}
	for _, i := range ids {
		batch = append(batch, core.RememberInput{ID: "m" + strconv.Itoa(i), Content: benchContent(r, i)})
		if len(batch) == 1000 {
			flush()
		}
	}
	flush()
	if err := eng.WaitIndexed(ctx); err != nil {
		b.Fatal(err)
	}
}

func seq(from, to int) []int {
	out := make([]int, 0, to-from)
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}

// shipAll ships every change after `after` as segments of 10,000 changes.
func shipAll(b *testing.B, a *backup.Archive, eng *core.Engine, after uint64) uint64 {
	b.Helper()
	for {
		ch, err := eng.ChangesSince(after, 10_000)
		if err != nil {
			b.Fatal(err)
		}
		if len(ch) == 0 {
			return after
		}
		if err := a.PutSegment(context.Background(), ch); err != nil {
			b.Fatal(err)
		}
		after = ch[len(ch)-1].Seq
	}
}

// BenchmarkRestoreReplay: a snapshot of 80% of ENGRAM_BENCH_MEMORIES
// memories plus change-log segments writing the other 20%, restored from a
// file:// target (download, checksum, open, replay, rename). Target: under
// 30 s for 100,000 memories.
func BenchmarkRestoreReplay(b *testing.B) {
	n := envInt("ENGRAM_BENCH_MEMORIES", 100_000)
	dim := envInt("ENGRAM_BENCH_DIM", 768)
	ctx := context.Background()
	eng, err := core.Open(b.TempDir(), benchEngineOptions(dim))
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	store, err := file.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	a, err := backup.New(store, backup.Options{EngineOptions: benchEngineOptions(dim)})
	if err != nil {
		b.Fatal(err)
	}
	r := rand.New(rand.NewSource(1))
	snapN := n * 4 / 5
	fill(b, eng, r, seq(0, snapN))
	snap, err := a.SnapshotEngine(ctx, eng)
	if err != nil {
		b.Fatal(err)
	}
	fill(b, eng, r, seq(snapN, n))
	shipAll(b, a, eng, snap.Manifest.Sequence)
	b.ResetTimer()
	var rep *backup.RestoreReport
	for i := 0; i < b.N; i++ {
		rep, err = a.Restore(ctx, backup.RestoreOptions{DataDir: filepath.Join(b.TempDir(), "restored")})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var total int64
	for _, s := range rep.Spaces {
		total += s.Memories
	}
	if total != int64(n) {
		b.Fatalf("restored %d memories, want %d", total, n)
	}
	b.ReportMetric(rep.Seconds, "restore_s")
	b.ReportMetric(float64(rep.ChangesApplied), "replayed_changes")
	b.ReportMetric(float64(snap.Manifest.Memories()), "snapshot_memories")
	b.ReportMetric(float64(snap.Manifest.PlainBytes())/1e6, "snapshot_MB")
	b.ReportMetric(float64(dim), "dim")
}

// BenchmarkIncrementalSnapshot: a full snapshot of ENGRAM_BENCH_INCR_MEMORIES
// (default 20,000) memories, then 5% of them rewritten and a second
// snapshot. Reports the second's uploaded bytes as a fraction of the
// first's. Target: at most 15%.
func BenchmarkIncrementalSnapshot(b *testing.B) {
	n := envInt("ENGRAM_BENCH_INCR_MEMORIES", 20_000)
	dim := envInt("ENGRAM_BENCH_DIM", 768)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		eng, err := core.Open(b.TempDir(), benchEngineOptions(dim))
		if err != nil {
			b.Fatal(err)
		}
		store, _ := file.New(b.TempDir())
		a, _ := backup.New(store, backup.Options{EngineOptions: benchEngineOptions(dim)})
		r := rand.New(rand.NewSource(2))
		fill(b, eng, r, seq(0, n))
		full, err := a.SnapshotEngine(ctx, eng)
		if err != nil {
			b.Fatal(err)
		}
		changed := r.Perm(n)[:n/20]
		fill(b, eng, r, changed)
		b.StartTimer()
		incr, err := a.SnapshotEngine(ctx, eng)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = eng.Close()
		// What the incremental snapshot uploaded: files the full one lacks.
		had := map[string]bool{}
		for _, f := range full.Manifest.Files {
			had[f.Key] = true
		}
		for _, f := range incr.Manifest.Files {
			if !had[f.Key] {
				b.Logf("uploaded %s: %d bytes stored (%d plain)", f.Path, f.StoredSize, f.Size)
			}
		}
		b.ReportMetric(float64(full.UploadedBytes)/1e6, "full_MB")
		b.ReportMetric(float64(incr.UploadedBytes)/1e6, "incremental_MB")
		b.ReportMetric(100*float64(incr.UploadedBytes)/float64(full.UploadedBytes), "incremental_%")
		b.ReportMetric(float64(incr.UploadedFiles), "incremental_files")
		b.ReportMetric(float64(len(incr.Manifest.Files)), "files")
	}
}

// BenchmarkSnapshotUploadS3: the upload phase of a snapshot to the S3
// server of ENGRAM_TEST_S3_* against plain minio-go PutObject calls
// (same parallelism, 4) of the same checkpoint's files to the same server,
// alternating in one run. Throughput is plain (uncompressed) bytes per
// second of wall time. Target: snapshot ≥ 0.8× plain.
func BenchmarkSnapshotUploadS3(b *testing.B) {
	ep := os.Getenv("ENGRAM_TEST_S3_ENDPOINT")
	if ep == "" {
		b.Skip("ENGRAM_TEST_S3_ENDPOINT is not set: scripts/test.sh or scripts/bench.sh backup starts versitygw")
	}
	n := envInt("ENGRAM_BENCH_UPLOAD_MEMORIES", 20_000)
	dim := envInt("ENGRAM_BENCH_DIM", 768)
	ctx := context.Background()
	bucket := os.Getenv("ENGRAM_TEST_S3_BUCKET")
	env := map[string]string{"ENGRAM_S3_ENDPOINT": ep, "ENGRAM_S3_ACCESS_KEY_ID": os.Getenv("ENGRAM_TEST_S3_ACCESS_KEY"),
		"ENGRAM_S3_SECRET_ACCESS_KEY": os.Getenv("ENGRAM_TEST_S3_SECRET_KEY"), "ENGRAM_S3_REGION": "us-east-1",
		"ENGRAM_S3_PATH_STYLE": "1", "ENGRAM_S3_INSECURE": "1"}
	mc, err := minio.New(ep, &minio.Options{Creds: credentials.NewStaticV4(env["ENGRAM_S3_ACCESS_KEY_ID"], env["ENGRAM_S3_SECRET_ACCESS_KEY"], ""),
		Region: "us-east-1", BucketLookup: minio.BucketLookupPath})
	if err != nil {
		b.Fatal(err)
	}
	// The data: a closed data directory (what backup create --data-dir snapshots).
	dataDir := b.TempDir()
	eng, err := core.Open(dataDir, benchEngineOptions(dim))
	if err != nil {
		b.Fatal(err)
	}
	fill(b, eng, rand.New(rand.NewSource(3)), seq(0, n))
	if err := eng.Close(); err != nil {
		b.Fatal(err)
	}
	// The baseline uploads the files of a checkpoint of the closed
	// directory, as SnapshotDataDir takes one (same files, same sizes).
	if eng, err = core.Open(dataDir, benchEngineOptions(dim)); err != nil {
		b.Fatal(err)
	}
	cp := filepath.Join(b.TempDir(), "cp")
	if _, err := eng.Checkpoint(cp); err != nil {
		b.Fatal(err)
	}
	if err := eng.Close(); err != nil {
		b.Fatal(err)
	}
	var files []string
	var plain int64
	_ = filepath.Walk(cp, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			files = append(files, p)
			plain += fi.Size()
		}
		return err
	})
	b.ResetTimer()
	var snapSec, plainSec, fullSec []float64
	var stored, snapPlain int64
	for i := 0; i < b.N; i++ {
		run := strconv.FormatInt(time.Now().UnixNano(), 36)
		// Plain minio-go: every file of the checkpoint, 4 at a time.
		start := time.Now()
		work := make(chan string)
		var wg sync.WaitGroup
		var perr error
		var mu sync.Mutex
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for p := range work {
					f, err := os.Open(p)
					if err == nil {
						st, _ := f.Stat()
						_, err = mc.PutObject(ctx, bucket, "bench-plain-"+run+"/"+filepath.Base(p), f, st.Size(), minio.PutObjectOptions{})
						f.Close()
					}
					if err != nil {
						mu.Lock()
						perr = err
						mu.Unlock()
					}
				}
			}()
		}
		for _, p := range files {
			work <- p
		}
		close(work)
		wg.Wait()
		if perr != nil {
			b.Fatal(perr)
		}
		plainSec = append(plainSec, time.Since(start).Seconds())

		// The snapshot, to a fresh prefix (a full, not incremental, upload).
		store, err := target.Open(ctx, "s3://"+bucket+"/bench-snap-"+run, target.Options{}, func(k string) string { return env[k] })
		if err != nil {
			b.Fatal(err)
		}
		var uploadStart time.Time
		a, err := backup.New(store, backup.Options{EngineOptions: benchEngineOptions(dim), Progress: func(e backup.Event) {
			if e.Stage == "upload" && uploadStart.IsZero() {
				uploadStart = time.Now()
			}
		}})
		if err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		res, err := a.SnapshotDataDir(ctx, dataDir)
		if err != nil {
			b.Fatal(err)
		}
		end := time.Now()
		snapSec = append(snapSec, end.Sub(uploadStart).Seconds())
		fullSec = append(fullSec, end.Sub(start).Seconds())
		stored, snapPlain = res.Manifest.StoredBytes(), res.Manifest.PlainBytes()
	}
	b.StopTimer()
	med := func(v []float64) float64 {
		s := append([]float64(nil), v...)
		for i := range s {
			for j := i + 1; j < len(s); j++ {
				if s[j] < s[i] {
					s[i], s[j] = s[j], s[i]
				}
			}
		}
		return s[len(s)/2]
	}
	mb, smb := float64(plain)/1e6, float64(snapPlain)/1e6
	b.ReportMetric(mb, "minio_MB")
	b.ReportMetric(smb, "snapshot_plain_MB")
	b.ReportMetric(float64(stored)/1e6, "snapshot_stored_MB")
	b.ReportMetric(mb/med(plainSec), "minio_MB/s")
	b.ReportMetric(smb/med(snapSec), "snapshot_upload_MB/s")
	b.ReportMetric(smb/med(fullSec), "snapshot_total_MB/s")
	b.ReportMetric((smb/med(snapSec))/(mb/med(plainSec)), "upload_ratio")
	b.ReportMetric((smb/med(fullSec))/(mb/med(plainSec)), "total_ratio")
}

// BenchmarkVerifyCache: level-2 verification of an unchanged archive
// (ENGRAM_BENCH_VERIFY_MEMORIES, default 10,000, a snapshot plus segments),
// first with an empty verify cache, then again with the cache the first
// run filled.
func BenchmarkVerifyCache(b *testing.B) {
	n := envInt("ENGRAM_BENCH_VERIFY_MEMORIES", 10_000)
	dim := envInt("ENGRAM_BENCH_DIM", 768)
	ctx := context.Background()
	eng, err := core.Open(b.TempDir(), benchEngineOptions(dim))
	if err != nil {
		b.Fatal(err)
	}
	defer eng.Close()
	store, _ := file.New(b.TempDir())
	a, _ := backup.New(store, backup.Options{EngineOptions: benchEngineOptions(dim)})
	r := rand.New(rand.NewSource(4))
	fill(b, eng, r, seq(0, n*4/5))
	snap, err := a.SnapshotEngine(ctx, eng)
	if err != nil {
		b.Fatal(err)
	}
	fill(b, eng, r, seq(n*4/5, n))
	shipAll(b, a, eng, snap.Manifest.Sequence)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cachePath := filepath.Join(b.TempDir(), "cache.json")
		c := backup.OpenVerifyCache(cachePath, 0)
		first, err := a.VerifyWith(ctx, backup.VerifyOptions{Level: 2, Cache: c})
		if err != nil || !first.OK() {
			b.Fatal(err, first)
		}
		if err := c.Save(a.Target()); err != nil {
			b.Fatal(err)
		}
		second, err := a.VerifyWith(ctx, backup.VerifyOptions{Level: 2, Cache: backup.OpenVerifyCache(cachePath, 0)})
		if err != nil || !second.OK() || second.Checked != 0 {
			b.Fatal(err, second)
		}
		b.ReportMetric(first.Seconds, "first_s")
		b.ReportMetric(second.Seconds, "second_s")
		b.ReportMetric(float64(first.Checked), "objects")
		b.ReportMetric(float64(snap.Manifest.StoredBytes())/1e6, "snapshot_stored_MB")
	}
}
