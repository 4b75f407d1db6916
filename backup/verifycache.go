package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// VerifyCache remembers which stored objects passed the level-2 checksum
// check, so that re-verifying an unchanged archive downloads only what is
// new. An entry is keyed by object key + stored size + modification time
// (+ the plain sha256 the manifest names, for engine files): an object
// rewritten under the same key has a new modification time and is checked
// again. Entries expire after MaxAge, so silent corruption in place (same
// size and time) is caught only on that cadence: the cache is opt-in
// (`backup verify --cache`); by default every object is checked.
//
// The cache is a local file (one per target, under the user's cache
// directory), not an object in the archive: verification then needs only
// read access to the bucket for its checks, and nobody who can write to the
// bucket can mark a damaged object as verified.
type VerifyCache struct {
	path   string
	maxAge time.Duration
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]int64 // cache key -> unix seconds of the check
}

type verifyCacheFile struct {
	FormatVersion int              `json:"format_version"`
	Target        string           `json:"target"`
	Entries       map[string]int64 `json:"entries"`
}

// DefaultVerifyCachePath is where the CLI keeps the cache of target:
// $XDG_CACHE_HOME/engram-ops/verify/<sha256(target)[:16]>.json, or
// $HOME/.cache/... when XDG_CACHE_HOME is unset. getenv reads the
// environment (os.Getenv in production).
func DefaultVerifyCachePath(target string, getenv func(string) string) (string, error) {
	dir := getenv("XDG_CACHE_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("neither XDG_CACHE_HOME nor HOME is set")
		}
		dir = filepath.Join(home, ".cache")
	}
	sum := sha256.Sum256([]byte(target))
	return filepath.Join(dir, "engram-ops", "verify", hex.EncodeToString(sum[:8])+".json"), nil
}

// OpenVerifyCache loads the cache at path (a missing or unreadable file is
// an empty cache). maxAge <= 0 means 7 days.
func OpenVerifyCache(path string, maxAge time.Duration) *VerifyCache {
	if maxAge <= 0 {
		maxAge = 7 * 24 * time.Hour
	}
	c := &VerifyCache{path: path, maxAge: maxAge, now: time.Now, entries: map[string]int64{}}
	if b, err := os.ReadFile(path); err == nil {
		var f verifyCacheFile
		if json.Unmarshal(b, &f) == nil && f.FormatVersion == 1 && f.Entries != nil {
			c.entries = f.Entries
		}
	}
	return c
}

// Len is the number of remembered objects.
func (c *VerifyCache) Len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

func cacheKey(o ObjectInfo, sha string) string {
	return o.Key + "|" + strconv.FormatInt(o.Size, 10) + "|" + strconv.FormatInt(o.Modified.UnixNano(), 10) + "|" + sha
}

func (c *VerifyCache) has(k string) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	at, ok := c.entries[k]
	return ok && c.now().Sub(time.Unix(at, 0)) < c.maxAge
}

func (c *VerifyCache) add(k string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.entries[k] = c.now().Unix()
	c.mu.Unlock()
}

// Save writes the cache atomically, dropping expired entries.
func (c *VerifyCache) Save(target string) error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	now := c.now()
	for k, at := range c.entries {
		if now.Sub(time.Unix(at, 0)) >= c.maxAge {
			delete(c.entries, k)
		}
	}
	b, err := json.Marshal(verifyCacheFile{FormatVersion: 1, Target: target, Entries: c.entries})
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(c.path), 0o755); err != nil {
		return err
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, c.path)
}

// verifyResultKey is the object a verification run records its result in.
const verifyResultKey = "verify/last.json"

// VerifyResult is the object verify/last.json: the last verification of
// the archive, written by `engram-ops backup verify` and read by a server's
// shipper, which exports it as engram_backup_last_verified_timestamp_seconds
// and (level 4) engram_backup_last_restore_drill_seconds.
type VerifyResult struct {
	FormatVersion int       `json:"format_version"`
	Level         int       `json:"level"`
	OK            bool      `json:"ok"`
	At            time.Time `json:"at"`
	Snapshot      string    `json:"snapshot,omitempty"`
	DrillSeconds  float64   `json:"drill_seconds,omitempty"`
	Problems      int       `json:"problems"`
	// Digest (format 2) is over the result with Digest empty; see jsonDigest.
	Digest string `json:"digest,omitempty"`
}

// verifyResultFormat is the verify/last.json format written; format 1 had
// no digest and is still read.
const verifyResultFormat = 2

func (a *Archive) recordVerify(ctx context.Context, rep *VerifyReport, snapshot string) error {
	r := VerifyResult{FormatVersion: verifyResultFormat, Level: rep.Level, OK: rep.OK(), At: a.opts.Now().UTC(), Snapshot: snapshot,
		Problems: len(rep.Problems)}
	if rep.Level >= 4 {
		r.DrillSeconds = rep.DrillSeconds
	}
	d, err := jsonDigest(&r)
	if err != nil {
		return err
	}
	r.Digest = d
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return a.store.Put(ctx, verifyResultKey, bytes.NewReader(b), int64(len(b)))
}

// LastVerify reads verify/last.json; (nil, nil) when no verification was
// recorded.
func (a *Archive) LastVerify(ctx context.Context) (*VerifyResult, error) {
	b, err := a.readAll(ctx, verifyResultKey, 1<<16)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return DecodeVerifyResult(b)
}

// DecodeVerifyResult parses verify/last.json, checking its digest (format
// 2 and later). It never panics on arbitrary input.
func DecodeVerifyResult(b []byte) (*VerifyResult, error) {
	var r VerifyResult
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, verifyResultKey, err)
	}
	if r.FormatVersion < 1 {
		return nil, fmt.Errorf("%w: %s: format %d is invalid", ErrCorrupt, verifyResultKey, r.FormatVersion)
	}
	if r.FormatVersion > verifyResultFormat {
		return nil, fmt.Errorf("%w: %s format %d, this binary reads up to %d", ErrNewerFormat, verifyResultKey, r.FormatVersion, verifyResultFormat)
	}
	if r.FormatVersion >= 2 || r.Digest != "" {
		c := r
		c.Digest = ""
		if err := checkDigest(verifyResultKey, r.Digest, &c, b, func() ([]byte, error) { return json.Marshal(&r) }); err != nil {
			return nil, err
		}
	}
	return &r, nil
}
