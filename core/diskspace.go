package core

import (
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The disk guard keeps the data directory's filesystem from filling up.
// Pebble cannot continue after a write-ahead-log write fails (it panics,
// as PostgreSQL does), and reopening a store whose filesystem is full
// spins on flushes that cannot be written. So writes are refused while the
// free space is under Options.MinFreeBytes, leaving that much for Pebble's
// own flushes and compactions; reads go on, and writes are accepted again
// as soon as space is freed. Open refuses to start below the reserve.

// diskCheckInterval is how often the free space is measured: at 20 MB/s of
// writes the guard overshoots by at most ~5 MB, well inside any sensible
// reserve, for four statfs calls a second.
const diskCheckInterval = 250 * time.Millisecond

// diskLow reports whether writes are being refused for lack of disk space.
func (e *Engine) diskLow() bool { return e.lowDisk.Load() }

// checkDiskSpace measures the free space and updates the guard, logging
// each change of state. With MinFreeBytes 0 it does nothing. A failed
// measurement keeps the last state; it is logged once, not four times a
// second, until a measurement succeeds again.
func (e *Engine) checkDiskSpace() {
	if e.opts.MinFreeBytes <= 0 {
		return
	}
	free, err := e.opts.DiskFree(e.dir)
	if err != nil {
		if !e.diskCheckFailing.Swap(true) {
			e.log.Error("cannot measure the data directory's free space; the disk guard keeps its last state",
				"data_dir", e.dir, "err", err)
		}
		return
	}
	e.diskCheckFailing.Store(false)
	e.diskFree.Store(free)
	low := free < e.opts.MinFreeBytes
	if e.lowDisk.Swap(low) != low {
		if low {
			e.log.Error("writes refused: the data directory's filesystem is almost full",
				"data_dir", e.dir, "free_bytes", free, "min_free_bytes", e.opts.MinFreeBytes)
		} else {
			e.log.Warn("writes accepted again: free space is above the reserve",
				"data_dir", e.dir, "free_bytes", free, "min_free_bytes", e.opts.MinFreeBytes)
		}
	}
}

// CheckFreeSpace reports whether the filesystem that holds, or would hold,
// dir has room to write need more bytes and still keep opts.MinFreeBytes
// free, before anything is created: the directory if it exists, else its
// nearest existing parent, is measured. Open checks with need 0; a restore
// checks with the snapshot's size before downloading it.
func CheckFreeSpace(dir string, need int64, opts Options) error {
	if opts.MinFreeBytes <= 0 {
		return nil
	}
	if opts.DiskFree == nil {
		opts.DiskFree = filesystemFree
	}
	at := dir
	for {
		if _, err := os.Stat(at); err == nil {
			break
		}
		parent := filepath.Dir(at)
		if parent == at {
			break
		}
		at = parent
	}
	free, err := opts.DiskFree(at)
	if err != nil {
		return internalf(err, "measure free space of %s", at)
	}
	if free-need < opts.MinFreeBytes {
		if need > 0 {
			return Errorf(KindInsufficientStorage, "INSUFFICIENT_STORAGE",
				"the data directory's filesystem has %s free (%d bytes), less than this needs: %s (%d bytes) to write and the %s (%d bytes) kept free for the storage engine (min_free_space); nothing was written: free space on that filesystem, or use another one",
				formatBytes(free), free, formatBytes(need), need, formatBytes(opts.MinFreeBytes), opts.MinFreeBytes).
				WithDetails("free_bytes", free, "need_bytes", need, "min_free_bytes", opts.MinFreeBytes)
		}
		return reserveError(free, opts.MinFreeBytes, "nothing was opened or changed: free space on that filesystem, or move the data directory")
	}
	return nil
}

// filesystemFree is the default Options.DiskFree: FilesystemSpace's free
// bytes.
func filesystemFree(path string) (int64, error) {
	free, _, err := FilesystemSpace(path)
	return free, err
}

// errDiskLow is what a write gets while the guard refuses writes.
func (e *Engine) errDiskLow() error {
	return reserveError(e.diskFree.Load(), e.opts.MinFreeBytes, refusedWrite)
}

const refusedWrite = "nothing was written: free space on that filesystem, then retry"

// Err is the error writes get while the guard refuses them, nil otherwise.
func (d DiskStats) Err() error {
	if !d.WritesRefused {
		return nil
	}
	return reserveError(d.FreeBytes, d.MinFreeBytes, refusedWrite)
}

// reserveError says the filesystem is under the reserve, and then outcome.
func reserveError(free, minFree int64, outcome string) error {
	return Errorf(KindInsufficientStorage, "INSUFFICIENT_STORAGE",
		"the data directory's filesystem has %s free (%d bytes), under the %s (%d bytes) kept free for the storage engine (min_free_space); %s",
		formatBytes(free), free, formatBytes(minFree), minFree, outcome).
		WithDetails("free_bytes", free, "min_free_bytes", minFree)
}

// formatBytes renders n in binary units, e.g. "1.5 GiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
