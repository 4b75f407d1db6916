package backup

import (
	"context"
	"errors"
	"io"
	"time"
)

// ObjectStore is what backup needs of a target: immutable objects under
// slash-separated keys. Implementations: backup/file (a local directory) and
// backup/s3 (any S3-compatible server). One conformance suite
// (backup/storetest) runs against both.
type ObjectStore interface {
	// Put stores the object atomically: readers see all of it or none.
	// size is the exact length of r, or -1 if unknown.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens an object. A missing key returns an error matching ErrNotFound.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat returns an object's size and modification time (ErrNotFound if missing).
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// List returns every object whose key starts with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]ObjectInfo, error)
	// Delete removes an object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// String names the target for messages and metric labels, without secrets.
	String() string
}

// ObjectInfo describes one stored object.
type ObjectInfo struct {
	Key      string
	Size     int64
	Modified time.Time
}

// ErrNotFound is returned (wrapped) for a missing object.
var ErrNotFound = errors.New("object not found")
