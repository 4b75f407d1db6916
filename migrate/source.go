// Package migrate moves records of another database into Engram: a Source
// yields records in a deterministic order with a resumable cursor, a
// Mapping (a strict TOML file, or the default mapping) turns each record
// into a memory and its references into associations, and Run writes
// bounded batches to a Sink — a running server (ops/client) or an engine
// opened on a stopped data directory — storing the source cursor atomically
// with every batch. Resume is the default: a run reads the stored cursor and
// continues after it, and memory ids derive from the object and the source
// key, so a batch replayed after a kill overwrites itself. Verify reconciles
// counts and content checksums per object; rejected records go to a JSON
// lines reject file.
//
// Associations are written in the batch of the record that carries the
// reference, so a reference must point to a record the source yields earlier
// (or in the same batch): sources order records that way (Neo4j: nodes
// before relationships). A reference whose target is not in Engram when its
// batch is written is rejected with the target's id, never left dangling.
//
// migrate imports core (the data-directory sink) and ops/client (the server
// sink); sources live in sub-packages (migrate/neo4j).
package migrate

import (
	"context"
	"fmt"
	"time"
)

// ObjectKind says what a source object's records become.
type ObjectKind uint8

const (
	// Entity records become memories (a table's rows, a label's nodes).
	Entity ObjectKind = iota
	// Relation records become associations only (a relationship type):
	// each reference of the record is one association.
	Relation
)

func (k ObjectKind) String() string {
	if k == Relation {
		return "relation"
	}
	return "entity"
}

// Object is one table, key pattern, node label or relationship type.
type Object struct {
	Name string
	Kind ObjectKind
	// Count is the number of records, or -1 when unknown.
	Count int64
	// Fields are the field names records of the object carry (a schema);
	// nil when the source cannot tell. Templates naming other fields are
	// load-time errors when Fields is known.
	Fields []string
}

// Record is one source record.
type Record struct {
	Object string
	// Key is the record's stable key within the source (primary key, Redis
	// key, node id). Memory ids derive from Object and Key.
	Key string
	// Fields hold typed values: string, int64, float64, bool, time.Time,
	// []any, map[string]any, nil, and []float32 for vectors.
	Fields map[string]any
	// Tags are source-given tags (a node's labels); the default mapping
	// stores them.
	Tags []string
	// Metadata is source-given metadata (a Redis key's type and expiry):
	// every memory of the record stores it, whatever the mapping.
	Metadata map[string]string
	// Refs are the record's references to other records: foreign keys of
	// an entity, or the endpoints of a relation record.
	Refs []Reference
	// Cursor is the source position just after this record: opening the
	// source at it yields the next record.
	Cursor string
	// Position is a human-readable position for reject lines and errors
	// ("line 12").
	Position string
}

// Reference points from a record (or, for relation records, from FromKey)
// to another record.
type Reference struct {
	Kind string
	// FromObject/FromKey name the origin; empty means the record itself.
	FromObject, FromKey string
	ToObject, ToKey     string
}

// RecordIterator yields records in source order. Next returns io.EOF at the
// end. A *BadRecordError is one record that could not be read: the iterator
// stays usable and the run rejects that record and continues; any other
// error stops the run. Run calls Next on a goroutine of its own, reading up
// to a batch ahead of the writer, so a record must not share
// memory the iterator reuses for later records.
type RecordIterator interface {
	Next() (Record, error)
	Close() error
}

// Source is something to migrate from.
type Source interface {
	// Kind names the source type ("neo4j-export"); it prefixes reject lines.
	Kind() string
	// Objects lists the source's objects with counts and schema, for
	// progress totals and mapping validation.
	Objects(ctx context.Context) ([]Object, error)
	// Open yields the records after cursor ("" = from the start).
	Open(ctx context.Context, cursor string) (RecordIterator, error)
}

// Sizer is implemented by sources that know their size in bytes (plan).
type Sizer interface {
	SizeBytes() (int64, error)
}

// BadRecordError is a record the source could not read (a malformed line).
type BadRecordError struct {
	Position string // "line 12"
	Cursor   string // the position after the bad record
	Raw      string // the raw record, truncated
	Reason   string
}

func (e *BadRecordError) Error() string {
	return fmt.Sprintf("%s: %s", e.Position, e.Reason)
}

// timeNow is replaced in tests.
var timeNow = time.Now
