package backup

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// memStore is an in-memory ObjectStore for this package's unit tests
// (backup/file imports backup, so it cannot be used here; the full cycle
// against file:// and S3 runs in cmd/engram-ops).
type memStore struct {
	mu   sync.Mutex
	objs map[string][]byte
	mod  map[string]time.Time
	// Now stamps modification times; nil leaves them zero (the distant past).
	Now func() time.Time
}

func newMemStore() *memStore {
	return &memStore{objs: map[string][]byte{}, mod: map[string]time.Time{}}
}

func (m *memStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if size >= 0 && int64(len(b)) != size {
		return fmt.Errorf("put %s: got %d bytes, size says %d", key, len(b), size)
	}
	m.mu.Lock()
	m.objs[key] = b
	if m.Now != nil {
		m.mod[key] = m.Now()
	}
	m.mu.Unlock()
	return nil
}

func (m *memStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m *memStore) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	if !ok {
		return ObjectInfo{}, fmt.Errorf("%s: %w", key, ErrNotFound)
	}
	return ObjectInfo{Key: key, Size: int64(len(b)), Modified: m.mod[key]}, nil
}

func (m *memStore) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ObjectInfo
	for k, b := range m.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, ObjectInfo{Key: k, Size: int64(len(b)), Modified: m.mod[k]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

func (m *memStore) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	delete(m.objs, key)
	delete(m.mod, key)
	m.mu.Unlock()
	return nil
}

func (m *memStore) String() string { return "mem://test" }
