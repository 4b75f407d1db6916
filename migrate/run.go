package migrate

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Options configure a Run.
type Options struct {
	Source Source
	// SourceName is the key the cursor is stored under (1-256 bytes).
	SourceName string
	Mapping    *Mapping
	// Sink receives the batches; with DryRun it is only read (the stored
	// cursor) and may be nil.
	Sink    Sink
	DryRun  bool
	Restart bool // ignore the stored cursor and start from the beginning
	// BatchSize bounds memories+associations per batch (default 500);
	// BatchBytes bounds a batch's estimated encoded size (default 4 MiB).
	BatchSize  int
	BatchBytes int
	// MaxRejects stops the run once more records than this were rejected;
	// negative means no limit.
	MaxRejects int
	// Rejects receives one JSON line per rejected record (may be nil).
	Rejects io.Writer
	// OnEvent receives progress events (may be nil).
	OnEvent func(Event)
	Metrics *Metrics
	// Examples is how many mapped memories per object a dry run keeps
	// (default 3).
	Examples int
	// Limit stops after this many records (0: the whole source).
	Limit int64
}

// EventType names a progress event.
type EventType string

const (
	EventStart  EventType = "start"
	EventBatch  EventType = "batch"
	EventRetry  EventType = "retry"
	EventReject EventType = "reject"
	EventDone   EventType = "done"
)

// Event is one progress report. Counts are this run's records per object,
// committed (or, in a dry run, mapped) so far.
type Event struct {
	Type     EventType
	Objects  []Object
	Counts   map[string]int64
	Rejects  int64
	Position string
	Message  string
}

// ObjectSummary counts one object's records in a run.
type ObjectSummary struct {
	Name         string   `json:"name"`
	Kind         string   `json:"kind"`
	Records      int64    `json:"records"`
	Memories     int64    `json:"memories"`
	Associations int64    `json:"associations"`
	Rejects      int64    `json:"rejects"`
	Skipped      int64    `json:"skipped"`
	Examples     []Memory `json:"examples,omitempty"`
}

// Summary reports a run.
type Summary struct {
	Source       string          `json:"source"`
	DryRun       bool            `json:"dry_run"`
	Resumed      bool            `json:"resumed"`
	StartCursor  string          `json:"start_cursor"`
	StoredCursor string          `json:"stored_cursor,omitempty"`
	EndCursor    string          `json:"end_cursor"`
	Complete     bool            `json:"complete"`
	Records      int64           `json:"records"`
	Memories     int64           `json:"memories"`
	Associations int64           `json:"associations"`
	Rejects      int64           `json:"rejects"`
	Batches      int             `json:"batches"`
	Seconds      float64         `json:"seconds"`
	Objects      []ObjectSummary `json:"objects"`
	// Index reports the index build after a bulk load into a data
	// directory (nil otherwise).
	Index *IndexBuild `json:"index,omitempty"`
}

// IndexBuild reports the ANN index build that ends a bulk load.
type IndexBuild struct {
	// Deferred: left to the next start of the server (--defer-index).
	Deferred bool    `json:"deferred"`
	Vectors  int     `json:"vectors"`
	Seconds  float64 `json:"seconds"`
}

// ErrTooManyRejects stops a run past Options.MaxRejects.
var ErrTooManyRejects = errors.New("too many rejected records")

// ErrMappingChanged is a resume whose stored cursor was written with
// another mapping.
var ErrMappingChanged = errors.New("the stored cursor was written with a different mapping")

const cursorVersion = "v1"

// encodeCursor stores the mapping fingerprint with the source position.
func encodeCursor(fp, pos string) string { return cursorVersion + ";" + fp + ";" + pos }

func decodeCursor(v string) (fp, pos string, err error) {
	parts := strings.SplitN(v, ";", 3)
	if len(parts) != 3 || parts[0] != cursorVersion {
		return "", "", fmt.Errorf("stored cursor %q is not one this version wrote", truncateBytes(v, 80))
	}
	return parts[1], parts[2], nil
}

// StoredPosition returns the source position stored for source, "" when
// none.
func StoredPosition(ctx context.Context, sink Sink, source, fp string) (string, bool, error) {
	v, ok, err := sink.Cursor(ctx, source)
	if err != nil || !ok {
		return "", false, err
	}
	gotFP, pos, err := decodeCursor(v)
	if err != nil {
		return "", true, err
	}
	if gotFP != fp {
		return pos, true, fmt.Errorf("%w (source %q at %s): run with the mapping used before, or start over with --restart --yes", ErrMappingChanged, source, pos)
	}
	return pos, true, nil
}

type runner struct {
	o       Options
	sum     *Summary
	objs    map[string]*ObjectSummary
	counts  map[string]int64
	rejects *bufio.Writer
	fp      string

	// the batch being built
	space     string
	mems      []Memory
	memRecs   []*Record
	memIDs    map[string]*Record // the batch's memory ids and their records
	assocs    []Association
	assocRecs []*Record
	bytes     int
	cursor    string // position after the last record taken (committed or not)
	committed string // position stored with the last written batch
	ordinal   int64
	lastObj   string
	batchObjs map[string]int64
}

// Run migrates the source's records after the stored cursor (or from the
// start with Restart) and returns what it did. It stops at the end of the
// source, on ctx's cancellation, past MaxRejects, or on a write error; every
// batch written before that is complete, with its cursor.
func Run(ctx context.Context, o Options) (*Summary, error) {
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.BatchBytes <= 0 {
		o.BatchBytes = 4 << 20
	}
	if o.Examples == 0 {
		o.Examples = 3
	}
	if o.SourceName == "" || len(o.SourceName) > 256 {
		return nil, fmt.Errorf("source name must be 1-256 bytes (got %d)", len(o.SourceName))
	}
	if o.Sink == nil && !o.DryRun {
		return nil, errors.New("no target: give a sink, or a dry run")
	}
	start := timeNow()
	r := &runner{o: o, sum: &Summary{Source: o.SourceName, DryRun: o.DryRun}, objs: map[string]*ObjectSummary{},
		counts: map[string]int64{}, fp: o.Mapping.Fingerprint(), batchObjs: map[string]int64{}, memIDs: map[string]*Record{}}
	for _, obj := range o.Mapping.Objects() {
		s := &ObjectSummary{Name: obj.Name, Kind: obj.Kind.String()}
		r.objs[obj.Name] = s
		r.sum.Objects = append(r.sum.Objects, *s)
	}
	if o.Rejects != nil {
		r.rejects = bufio.NewWriter(o.Rejects)
	}
	if o.Sink != nil {
		pos, ok, err := StoredPosition(ctx, o.Sink, o.SourceName, r.fp)
		if ok {
			r.sum.StoredCursor = pos
		}
		if err != nil && !(o.Restart && ok) {
			return nil, fmt.Errorf("read the stored cursor: %w", err)
		}
		if ok && !o.Restart {
			r.cursor, r.sum.Resumed = pos, true
		}
	}
	r.sum.StartCursor, r.committed = r.cursor, r.cursor
	it, err := o.Source.Open(ctx, r.cursor)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	r.emit(Event{Type: EventStart, Position: r.cursor})
	err = r.loop(ctx, it)
	if err == nil {
		err = r.flush(ctx, true)
		r.sum.Complete = err == nil && (o.Limit == 0 || r.sum.Records < o.Limit)
	}
	if r.rejects != nil {
		if ferr := r.rejects.Flush(); ferr != nil && err == nil {
			err = fmt.Errorf("write the reject file: %w", ferr)
		}
	}
	r.sum.EndCursor = r.committed
	r.sum.Seconds = time.Since(start).Seconds()
	for i := range r.sum.Objects {
		r.sum.Objects[i] = *r.objs[r.sum.Objects[i].Name]
	}
	r.emit(Event{Type: EventDone, Position: r.committed})
	return r.sum, err
}

func (r *runner) emit(e Event) {
	if r.o.OnEvent == nil {
		return
	}
	e.Objects = r.o.Mapping.Objects()
	e.Counts = make(map[string]int64, len(r.counts))
	for k, v := range r.counts {
		e.Counts[k] = v
	}
	e.Rejects = r.sum.Rejects
	r.o.OnEvent(e)
}

func (r *runner) obj(name string) *ObjectSummary {
	s := r.objs[name]
	if s == nil {
		s = &ObjectSummary{Name: name, Kind: Entity.String()}
		r.objs[name] = s
		r.sum.Objects = append(r.sum.Objects, *s)
	}
	return s
}

func (r *runner) loop(ctx context.Context, it RecordIterator) error {
	p := startPrefetch(it, r.o.Mapping, r.o.BatchSize)
	defer p.stop()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if r.o.Limit > 0 && r.sum.Records >= r.o.Limit {
			return nil
		}
		x, err := p.next()
		if err == io.EOF {
			return nil
		}
		var bad *BadRecordError
		if errors.As(err, &bad) {
			r.sum.Records++
			r.cursor = bad.Cursor
			if err := r.reject("", bad.Position, bad.Cursor, "", bad.Raw, bad.Reason); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if err := r.take(ctx, &x.rec, x.m, x.mapErr); err != nil {
			return err
		}
	}
}

// mappedRecord is a source record with what the mapping made of it.
type mappedRecord struct {
	rec    Record
	m      Mapped
	mapErr error
	err    error // the iterator's error instead of a record
}

// prefetcher reads and maps records on its own goroutine, a few chunks
// ahead of the writer, so decoding and mapping overlap the sink's writes.
// Records arrive in source order; an iterator error other than a
// *BadRecordError ends the stream.
type prefetcher struct {
	ch   chan []mappedRecord
	quit chan struct{}
	done chan struct{}
	cur  []mappedRecord
	i    int
	end  error
}

const (
	prefetchChunk  = 256
	prefetchChunks = 4
)

// startPrefetch reads ahead at least prefetchChunks chunks, and a batch of
// batchSize records, so the next batch is read and mapped while the sink
// writes one.
func startPrefetch(it RecordIterator, m *Mapping, batchSize int) *prefetcher {
	depth := max(prefetchChunks, batchSize/prefetchChunk+1)
	p := &prefetcher{ch: make(chan []mappedRecord, depth), quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer close(p.ch)
		for {
			chunk := make([]mappedRecord, 0, prefetchChunk)
			last := false
			for len(chunk) < prefetchChunk && !last {
				rec, err := it.Next()
				var bad *BadRecordError
				switch {
				case err == nil:
					x := mappedRecord{rec: rec}
					x.m, x.mapErr = m.Apply(&x.rec)
					chunk = append(chunk, x)
				case errors.As(err, &bad):
					chunk = append(chunk, mappedRecord{err: err})
				default:
					chunk = append(chunk, mappedRecord{err: err})
					last = true
				}
			}
			select {
			case p.ch <- chunk:
			case <-p.quit:
				return
			}
			if last {
				return
			}
		}
	}()
	return p
}

// next returns the next record, or the iterator's error.
func (p *prefetcher) next() (*mappedRecord, error) {
	if p.i == len(p.cur) {
		if p.end != nil {
			return nil, p.end
		}
		chunk, ok := <-p.ch
		if !ok {
			return nil, io.EOF
		}
		p.cur, p.i = chunk, 0
	}
	x := &p.cur[p.i]
	p.i++
	if x.err != nil {
		var bad *BadRecordError
		if !errors.As(x.err, &bad) {
			p.end = x.err
		}
		return nil, x.err
	}
	return x, nil
}

// stop ends the reading goroutine and waits for it, so the iterator can
// be closed.
func (p *prefetcher) stop() {
	close(p.quit)
	<-p.done
}

func (r *runner) take(ctx context.Context, rec *Record, m Mapped, err error) error {
	r.sum.Records++
	os := r.obj(rec.Object)
	os.Records++
	if err != nil {
		r.cursor = rec.Cursor
		return r.reject(rec.Object, rec.Position, rec.Cursor, rec.Key, rec.Fields, err.Error())
	}
	if m.Skipped {
		os.Skipped++
		r.cursor = rec.Cursor
		r.batchObjs[rec.Object]++
		return nil
	}
	if r.space != m.Space && r.pending() > 0 {
		if err := r.flush(ctx, false); err != nil {
			return err
		}
	}
	r.space = m.Space
	if m.Memory != nil {
		if prev, dup := r.memIDs[m.Memory.ID]; dup {
			r.cursor = rec.Cursor
			return r.reject(rec.Object, rec.Position, rec.Cursor, rec.Key, rec.Fields,
				fmt.Sprintf("memory id %q is also the id of the record at %s; the id template must give each record its own id", m.Memory.ID, prev.Position))
		}
		r.memIDs[m.Memory.ID] = rec
		r.mems = append(r.mems, *m.Memory)
		r.memRecs = append(r.memRecs, rec)
		r.bytes += memBytes(m.Memory)
		if r.o.DryRun && len(os.Examples) < r.o.Examples {
			os.Examples = append(os.Examples, *m.Memory)
		}
	}
	for _, a := range m.Associations {
		r.assocs = append(r.assocs, a)
		r.assocRecs = append(r.assocRecs, rec)
		r.bytes += len(a.From) + len(a.To) + len(a.Kind) + 48
	}
	r.cursor = rec.Cursor
	r.ordinal++
	r.lastObj = rec.Object
	r.batchObjs[rec.Object]++
	if r.pending() >= r.o.BatchSize || r.bytes >= r.o.BatchBytes {
		return r.flush(ctx, false)
	}
	return nil
}

func (r *runner) pending() int { return len(r.mems) + len(r.assocs) }

func memBytes(m *Memory) int {
	n := len(m.ID) + len(m.Content) + len(m.Embedding)*12 + 96
	for _, t := range m.Tags {
		n += len(t) + 3
	}
	for k, v := range m.Metadata {
		n += len(k) + len(v) + 6
	}
	return n
}

// flush writes the batch with the cursor of its last record. A refusal
// caused by one item rejects that item (and associations that need it) and
// writes the rest. final flushes a cursor-only batch too, so a run that
// ends on rejected or skipped records stores its end position.
func (r *runner) flush(ctx context.Context, final bool) error {
	if r.pending() == 0 && (r.cursor == r.committed || !final) {
		return nil
	}
	if !r.o.DryRun {
		for {
			space := r.space
			if space == "" {
				space = r.o.Mapping.space
			}
			b := &Batch{Memories: r.mems, Associations: r.assocs, Source: r.o.SourceName, Cursor: encodeCursor(r.fp, r.cursor)}
			err := r.o.Sink.Write(ctx, space, b)
			var ie *ItemError
			if errors.As(err, &ie) {
				if err := r.dropItem(ie); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return r.nameBatch(err)
			}
			break
		}
		if r.rejects != nil {
			if err := r.rejects.Flush(); err != nil {
				return fmt.Errorf("write the reject file: %w", err)
			}
		}
	}
	r.sum.Batches++
	r.sum.Memories += int64(len(r.mems))
	r.sum.Associations += int64(len(r.assocs))
	for _, rec := range r.memRecs {
		r.objs[rec.Object].Memories++
	}
	for _, rec := range r.assocRecs {
		r.objs[rec.Object].Associations++
	}
	for obj, n := range r.batchObjs {
		r.counts[obj] += n
		if r.o.Metrics != nil {
			r.o.Metrics.records.WithLabelValues(r.o.SourceName, obj).Add(float64(n))
		}
	}
	if r.o.Metrics != nil && r.lastObj != "" {
		r.o.Metrics.position.WithLabelValues(r.o.SourceName, r.lastObj).Set(float64(r.ordinal))
	}
	r.committed = r.cursor
	r.mems, r.memRecs, r.assocs, r.assocRecs = r.mems[:0], r.memRecs[:0], r.assocs[:0], r.assocRecs[:0]
	r.bytes = 0
	clear(r.batchObjs)
	clear(r.memIDs)
	r.emit(Event{Type: EventBatch, Position: r.committed})
	return nil
}

// nameBatch says which records the failed batch held.
func (r *runner) nameBatch(err error) error {
	var stop *StopError
	if errors.As(err, &stop) {
		return err
	}
	first, last := "", ""
	if len(r.memRecs) > 0 {
		first, last = r.memRecs[0].Position, r.memRecs[len(r.memRecs)-1].Position
	} else if len(r.assocRecs) > 0 {
		first, last = r.assocRecs[0].Position, r.assocRecs[len(r.assocRecs)-1].Position
	}
	return fmt.Errorf("writing the batch of records %s to %s failed (the batch was not stored; rerun to resume at %s): %w", first, last, orStart(r.committed), err)
}

func orStart(pos string) string {
	if pos == "" {
		return "the start"
	}
	return pos
}

// dropItem removes a refused item from the batch and rejects its record;
// a refused memory takes the associations that touch it along.
func (r *runner) dropItem(ie *ItemError) error {
	if ie.Association {
		if ie.Index >= len(r.assocs) {
			return ie.Err
		}
		rec := r.assocRecs[ie.Index]
		a := r.assocs[ie.Index]
		r.assocs = append(r.assocs[:ie.Index], r.assocs[ie.Index+1:]...)
		r.assocRecs = append(r.assocRecs[:ie.Index], r.assocRecs[ie.Index+1:]...)
		return r.reject(rec.Object, rec.Position, rec.Cursor, rec.Key, rec.Fields,
			fmt.Sprintf("association %s -> %s refused: %v", a.From, a.To, ie.Err))
	}
	if ie.Index >= len(r.mems) {
		return ie.Err
	}
	rec, id := r.memRecs[ie.Index], r.mems[ie.Index].ID
	delete(r.memIDs, id)
	r.mems = append(r.mems[:ie.Index], r.mems[ie.Index+1:]...)
	r.memRecs = append(r.memRecs[:ie.Index], r.memRecs[ie.Index+1:]...)
	if err := r.reject(rec.Object, rec.Position, rec.Cursor, rec.Key, rec.Fields, "refused by the target: "+ie.Err.Error()); err != nil {
		return err
	}
	keep := r.assocs[:0]
	keepRecs := r.assocRecs[:0]
	for i, a := range r.assocs {
		if a.From == id || a.To == id {
			ar := r.assocRecs[i]
			if ar != rec {
				if err := r.reject(ar.Object, ar.Position, ar.Cursor, ar.Key, ar.Fields,
					fmt.Sprintf("association %s -> %s needs memory %s, which was refused", a.From, a.To, id)); err != nil {
					return err
				}
			}
			continue
		}
		keep = append(keep, a)
		keepRecs = append(keepRecs, r.assocRecs[i])
	}
	r.assocs, r.assocRecs = keep, keepRecs
	return nil
}

// rejectLine is one line of the reject file.
type rejectLine struct {
	Source   string `json:"source"`
	Position string `json:"position"`
	Cursor   string `json:"cursor"`
	Object   string `json:"object,omitempty"`
	Key      string `json:"key,omitempty"`
	Record   any    `json:"record"`
	Reason   string `json:"reason"`
}

func (r *runner) reject(object, position, cursor, key string, record any, reason string) error {
	r.sum.Rejects++
	if object != "" {
		r.obj(object).Rejects++
	}
	if r.o.Metrics != nil {
		r.o.Metrics.rejects.WithLabelValues(r.o.SourceName, object).Inc()
	}
	if r.rejects != nil {
		b, err := json.Marshal(rejectLine{Source: r.o.Source.Kind(), Position: position, Cursor: cursor, Object: object, Key: key, Record: record, Reason: reason})
		if err != nil {
			b, _ = json.Marshal(rejectLine{Source: r.o.Source.Kind(), Position: position, Cursor: cursor, Object: object, Key: key, Record: fmt.Sprint(record), Reason: reason})
		}
		r.rejects.Write(b)
		r.rejects.WriteByte('\n')
	}
	r.emit(Event{Type: EventReject, Position: position, Message: reason})
	if r.o.MaxRejects >= 0 && r.sum.Rejects > int64(r.o.MaxRejects) {
		return fmt.Errorf("%w: %d, more than --max-rejects %d (last: %s: %s); nothing after %s was written", ErrTooManyRejects, r.sum.Rejects, r.o.MaxRejects, position, reason, orStart(r.committed))
	}
	return nil
}
