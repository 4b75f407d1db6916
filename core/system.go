package core

import (
	"context"
	"errors"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// System records are the engine's own small records that are not memories
// (API keys, for one): opaque values under a name, written through the
// one commit path and the change log, so they are as durable as an
// acknowledged write, travel in snapshots and are reproduced by a
// point-in-time restore. The engine does not interpret the values.

// SystemRecord is one system record. A nil Value deletes the record.
type SystemRecord struct {
	Key   string
	Value []byte
}

const (
	maxSystemKeyBytes   = 256
	maxSystemValueBytes = 64 << 10
)

func systemKey(key string) []byte { return spaceKey(famSystem, key) }

// PutSystem writes (or, with a nil value, deletes) the system record key
// as one acknowledged mutation and returns its change-log sequence.
func (e *Engine) PutSystem(ctx context.Context, key string, value []byte) (uint64, error) {
	if err := ctxErr(ctx); err != nil {
		return 0, err
	}
	if key == "" || len(key) > maxSystemKeyBytes || strings.IndexByte(key, 0) >= 0 {
		return 0, Errorf(KindInvalid, "INVALID_SYSTEM_KEY", "system record key must be 1..%d bytes without NUL", maxSystemKeyBytes)
	}
	if len(value) > maxSystemValueBytes {
		return 0, Errorf(KindTooLarge, "SYSTEM_RECORD_TOO_LARGE", "system record %q is %d bytes; the limit is %d bytes", key, len(value), maxSystemValueBytes)
	}
	rec := SystemRecord{Key: key, Value: value}
	return e.commit(commitAcked, func(t *txn) error {
		t.setSystem(rec)
		return nil
	})
}

func (t *txn) setSystem(r SystemRecord) {
	if r.Value == nil {
		_ = t.batch.Delete(systemKey(r.Key), nil)
	} else {
		_ = t.batch.Set(systemKey(r.Key), r.Value, nil)
	}
	t.logChange(Change{Op: OpSetSystem, System: &r})
}

// SystemRecords returns the system records whose key starts with prefix,
// in key order.
func (e *Engine) SystemRecords(prefix string) ([]SystemRecord, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	lo := systemKey(prefix)
	it, err := e.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return nil, internalf(err, "read system records")
	}
	var out []SystemRecord
	for ok := it.First(); ok; ok = it.Next() {
		out = append(out, SystemRecord{Key: string(it.Key()[1:]), Value: append([]byte(nil), it.Value()...)})
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return nil, internalf(err, "read system records")
	}
	return out, nil
}
