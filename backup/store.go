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

// ConditionalStore is an ObjectStore with the conditional writes that fence
// an archive's writers (see "Generations and fencing" in the package doc):
// a put that creates only (S3's If-None-Match: *) and one that replaces only
// the version read (If-Match: <etag>). A failed condition returns an error
// matching ErrPrecondition and stores nothing. Both stores in this module
// implement it; the conformance suite (backup/storetest) checks them.
type ConditionalStore interface {
	ObjectStore
	// PutIfAbsent stores the object only if key does not exist, and
	// returns the stored version's tag.
	PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) (tag string, err error)
	// PutIfMatch replaces the object only if its current version has the
	// tag given (a missing object does not match), and returns the new tag.
	PutIfMatch(ctx context.Context, key string, r io.Reader, size int64, tag string) (newTag string, err error)
	// GetTagged opens an object and returns the tag of the version opened.
	GetTagged(ctx context.Context, key string) (io.ReadCloser, string, error)
}

// ErrPrecondition is returned (wrapped) by a conditional put whose
// condition does not hold: the object exists (PutIfAbsent), or it is
// missing or another version (PutIfMatch).
var ErrPrecondition = errors.New("precondition failed")
