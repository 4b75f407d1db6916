// Package neo4j holds the Neo4j sources of migrate: an APOC
// apoc.export.json.all JSON-lines file, read as a stream, and a live
// database over Bolt (Bolt), which yield the same records for one graph.
//
// An export holds nodes, then relationships, one JSON object a line:
//
//	{"type":"node","id":"0","labels":["User"],"properties":{"name":"Ann"}}
//	{"type":"relationship","id":"0","label":"KNOWS","properties":{},"start":{"id":"0","labels":["User"]},"end":{"id":"1","labels":["User"]}}
//
// A node's object is its first label (nodes without labels are "_unlabelled");
// all its labels are its source tags. A relationship's object is its type,
// and it becomes one association from its start node to its end node, so it
// must come after both (APOC writes nodes first). The cursor is the number
// of the last line read and the byte offset after it; a malformed line is a
// rejected record naming its line number. Ids may be strings (APOC 4 and
// later) or numbers.
package neo4j

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/engram-ops/engram-ops/migrate"
)

// Unlabelled is the object of nodes without labels.
const Unlabelled = "_unlabelled"

// MaxLineBytes bounds one line of an export.
const MaxLineBytes = 64 << 20

// Export is an APOC JSON-lines export file.
type Export struct {
	Path string
}

func (e *Export) Kind() string { return "neo4j-export" }

// SizeBytes is the file's size.
func (e *Export) SizeBytes() (int64, error) {
	st, err := os.Stat(e.Path)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Objects reads the whole file once: every first label and relationship
// type, with counts and the union of their property names.
func (e *Export) Objects(ctx context.Context) ([]migrate.Object, error) {
	it, err := e.open("", true)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	type acc struct {
		obj    migrate.Object
		fields map[string]bool
	}
	objs := map[string]*acc{}
	for {
		rec, err := it.Next()
		if err == io.EOF {
			break
		}
		var bad *migrate.BadRecordError
		if errors.As(err, &bad) {
			continue
		}
		if err != nil {
			return nil, err
		}
		a := objs[rec.Object]
		if a == nil {
			kind := migrate.Entity
			if len(rec.Refs) > 0 && rec.Refs[0].FromKey != "" {
				kind = migrate.Relation
			}
			a = &acc{obj: migrate.Object{Name: rec.Object, Kind: kind}, fields: map[string]bool{}}
			objs[rec.Object] = a
		}
		a.obj.Count++
		for k := range rec.Fields {
			a.fields[k] = true
		}
	}
	out := make([]migrate.Object, 0, len(objs))
	for _, a := range objs {
		a.obj.Fields = make([]string, 0, len(a.fields))
		for k := range a.fields {
			a.obj.Fields = append(a.obj.Fields, k)
		}
		sort.Strings(a.obj.Fields)
		out = append(out, a.obj)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Open reads the records after cursor ("LINE:OFFSET", "" = the start).
func (e *Export) Open(_ context.Context, cursor string) (migrate.RecordIterator, error) {
	return e.open(cursor, false)
}

// open reads the records after cursor; keysOnly leaves the values of
// Fields nil (Objects). The lines are decoded on every core.
func (e *Export) open(cursor string, keysOnly bool) (migrate.RecordIterator, error) {
	var line, off int64
	if cursor != "" {
		l, o, ok := strings.Cut(cursor, ":")
		var err1, err2 error
		line, err1 = strconv.ParseInt(l, 10, 64)
		off, err2 = strconv.ParseInt(o, 10, 64)
		if !ok || err1 != nil || err2 != nil || line < 0 || off < 0 {
			return nil, fmt.Errorf("neo4j export cursor %q is not LINE:OFFSET", cursor)
		}
	}
	f, err := os.Open(e.Path)
	if err != nil {
		return nil, fmt.Errorf("open the export: %w", err)
	}
	if off > 0 {
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		if off > st.Size() {
			f.Close()
			return nil, fmt.Errorf("the stored cursor is at byte %d (line %d) but %s has only %d bytes: the file changed since the migration started (start over with --restart --yes)", off, line, e.Path, st.Size())
		}
		if _, err := f.Seek(off, io.SeekStart); err != nil {
			f.Close()
			return nil, err
		}
	}
	rd := NewReader(f, line, off)
	rd.keysOnly = keysOnly
	if n := decodeWorkers(); n > 1 {
		return newParallelReader(rd, n), nil
	}
	return rd, nil
}

// Reader reads export lines from r, which is positioned at byte off after
// line number line.
type Reader struct {
	r    *bufio.Reader
	c    io.Closer
	line int64
	off  int64
	buf  []byte
	// dec decodes lines from feed, one at a time; it is dropped after a
	// line it did not accept, since it may hold the rest of that line.
	dec  *json.Decoder
	feed lineFeed
	// keysOnly leaves the values of Fields nil (Objects).
	keysOnly bool
}

// lineFeed hands the decoder the current line and then io.EOF.
type lineFeed struct{ b []byte }

func (f *lineFeed) Read(p []byte) (int, error) {
	if len(f.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, f.b)
	f.b = f.b[n:]
	return n, nil
}

// NewReader returns a record iterator over r; r is closed by Close when it
// is an io.Closer.
func NewReader(r io.Reader, line, off int64) *Reader {
	rd := &Reader{r: bufio.NewReaderSize(r, 256<<10), line: line, off: off}
	if c, ok := r.(io.Closer); ok {
		rd.c = c
	}
	return rd
}

func (rd *Reader) Close() error {
	if rd.c != nil {
		return rd.c.Close()
	}
	return nil
}

// readLine returns the next line without its newline; tooLong is set when
// it was longer than MaxLineBytes (the rest is skipped).
func (rd *Reader) readLine() (b []byte, tooLong bool, err error) {
	rd.buf = rd.buf[:0]
	for {
		chunk, err := rd.r.ReadSlice('\n')
		rd.off += int64(len(chunk))
		if len(rd.buf)+len(chunk) <= MaxLineBytes {
			rd.buf = append(rd.buf, chunk...)
		} else {
			tooLong = true
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF && (len(rd.buf) > 0 || tooLong) {
			err = nil
		}
		if err != nil {
			return nil, false, err
		}
		return bytes.TrimRight(rd.buf, "\r\n"), tooLong, nil
	}
}

type endpoint struct {
	ID     flexID   `json:"id"`
	Labels []string `json:"labels"`
}

// exportLine is an export line with its properties kept raw, for
// parseSlow's per-part error messages.
type exportLine struct {
	lineHead
	Properties json.RawMessage `json:"properties"`
}

// flexID accepts a string or an integer id.
type flexID struct {
	s   string
	set bool
}

func (f *flexID) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		f.set = true
		// The decoder has validated b: without escapes and with valid
		// UTF-8 the string is the bytes between the quotes.
		if n := len(b); n >= 2 && bytes.IndexByte(b[1:n-1], '\\') < 0 && utf8.Valid(b[1:n-1]) {
			f.s = string(b[1 : n-1])
			return nil
		}
		return json.Unmarshal(b, &f.s)
	}
	if string(b) == "null" {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("id %s is not a string or a number", b)
	}
	f.s, f.set = n.String(), true
	return nil
}

// Next returns the next record, a *migrate.BadRecordError for a malformed
// line, or io.EOF.
func (rd *Reader) Next() (migrate.Record, error) {
	for {
		b, tooLong, err := rd.readLine()
		if err != nil {
			if err == io.EOF {
				return migrate.Record{}, io.EOF
			}
			return migrate.Record{}, fmt.Errorf("read the export after line %d: %w", rd.line, err)
		}
		rd.line++
		if tooLong {
			return migrate.Record{}, rd.bad(nil, fmt.Sprintf("line is longer than %d bytes", MaxLineBytes))
		}
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		rec, err := rd.parse(b)
		if err != nil {
			return migrate.Record{}, rd.bad(b, err.Error())
		}
		return rec, nil
	}
}

func (rd *Reader) bad(raw []byte, reason string) *migrate.BadRecordError {
	if len(raw) > 1024 {
		raw = append(raw[:1024:1024], "…"...)
	}
	return &migrate.BadRecordError{Position: rd.position(), Cursor: rd.cursor(), Raw: string(raw), Reason: reason}
}

func (rd *Reader) position() string { return "line " + strconv.FormatInt(rd.line, 10) }
func (rd *Reader) cursor() string {
	return strconv.FormatInt(rd.line, 10) + ":" + strconv.FormatInt(rd.off, 10)
}

// lineHead is an export line without its properties.
type lineHead struct {
	Type   string    `json:"type"`
	ID     flexID    `json:"id"`
	Labels []string  `json:"labels"`
	Label  string    `json:"label"`
	Start  *endpoint `json:"start"`
	End    *endpoint `json:"end"`
}

// fastLine is exportLine with the properties decoded in the same pass.
type fastLine struct {
	lineHead
	Properties any `json:"properties"`
}

// keysLine is an export line whose property values are checked but not
// kept (Objects needs the names only).
type keysLine struct {
	lineHead
	Properties map[string]skipValue `json:"properties"`
}

type skipValue struct{}

func (*skipValue) UnmarshalJSON([]byte) error { return nil }

// parse decodes a line in one pass; any line that pass does not accept as
// a whole is parsed again by parseSlow, so errors (and their messages) are
// those of parseSlow.
func (rd *Reader) parse(b []byte) (migrate.Record, error) {
	if rec, ok := rd.parseFast(b); ok {
		return rec, nil
	}
	return rd.parseSlow(b)
}

func (rd *Reader) parseFast(b []byte) (migrate.Record, bool) {
	var head *lineHead
	var props map[string]any
	if rd.keysOnly {
		var l keysLine
		if !rd.decode(b, &l) {
			return migrate.Record{}, false
		}
		head, props = &l.lineHead, make(map[string]any, len(l.Properties))
		for k := range l.Properties {
			props[k] = nil
		}
	} else {
		var l fastLine
		if !rd.decode(b, &l) {
			return migrate.Record{}, false
		}
		head = &l.lineHead
		switch p := l.Properties.(type) {
		case nil:
			props = map[string]any{}
		case map[string]any:
			for k, v := range p {
				p[k] = convert(v)
			}
			props = p
		default:
			return migrate.Record{}, false
		}
	}
	rec, err := rd.record(head, props)
	return rec, err == nil
}

// decode decodes line b, all of it, into v.
func (rd *Reader) decode(b []byte, v any) bool {
	if rd.dec == nil {
		rd.dec = json.NewDecoder(&rd.feed)
		rd.dec.UseNumber()
	}
	rd.feed.b = b
	if rd.dec.Decode(v) != nil || !onlySpace(rd.feed.b) || !onlySpaceReader(rd.dec.Buffered()) {
		rd.dec = nil
		return false
	}
	return true
}

// onlySpace reports whether b is JSON whitespace only.
func onlySpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// onlySpaceReader reports whether what r holds is JSON whitespace only,
// reading it through a small buffer (once per line: no allocation).
func onlySpaceReader(r io.Reader) bool {
	var b [64]byte
	for {
		n, err := r.Read(b[:])
		if !onlySpace(b[:n]) {
			return false
		}
		if err != nil || n == 0 {
			return true
		}
	}
}

func (rd *Reader) parseSlow(b []byte) (migrate.Record, error) {
	var l exportLine
	if err := json.Unmarshal(b, &l); err != nil {
		return migrate.Record{}, fmt.Errorf("not an APOC export line: %v", err)
	}
	props, err := properties(l.Properties)
	if err != nil {
		return migrate.Record{}, err
	}
	return rd.record(&l.lineHead, props)
}

// record builds the record of a decoded line; both decode paths use it, so
// they accept the same lines.
func (rd *Reader) record(l *lineHead, props map[string]any) (migrate.Record, error) {
	if !l.ID.set || l.ID.s == "" {
		return migrate.Record{}, fmt.Errorf("%s has no id", orType(l.Type))
	}
	var rec migrate.Record
	switch l.Type {
	case "node":
		rec = nodeRecord(l.ID.s, l.Labels, props)
	case "relationship":
		if l.Label == "" {
			return migrate.Record{}, errors.New("relationship has no label (its type)")
		}
		if l.Start == nil || !l.Start.ID.set || l.End == nil || !l.End.ID.set {
			return migrate.Record{}, errors.New("relationship needs start.id and end.id")
		}
		rec = relationshipRecord(l.ID.s, l.Label, props, l.Start.ID.s, l.Start.Labels, l.End.ID.s, l.End.Labels)
	default:
		return migrate.Record{}, fmt.Errorf("type %q is not node or relationship", l.Type)
	}
	rec.Cursor, rec.Position = rd.cursor(), rd.position()
	return rec, nil
}

func orType(t string) string {
	if t == "" {
		return "line"
	}
	return t
}

func firstLabel(labels []string) string {
	if len(labels) == 0 {
		return Unlabelled
	}
	return labels[0]
}

// properties decodes a properties object: integers become int64, other
// numbers float64, objects map[string]any, arrays []any.
func properties(raw json.RawMessage) (map[string]any, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("properties is not a JSON object: %v", err)
	}
	for k, v := range m {
		m[k] = convert(v)
	}
	return m, nil
}

func convert(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil || math.IsInf(f, 0) {
			return string(x)
		}
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = convert(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = convert(e)
		}
		return x
	}
	return v
}
