package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// headKey is the head record: the newest change shipped to the target.
const headKey = "head.json"

// HeadFormat is the newest head record format this binary reads. It writes
// format 1 for generation 1, so that archives with a single generation stay
// readable by older binaries, and format 2 (with the generation fields) for
// later generations, which older binaries refuse as a newer format instead
// of shipping into or restoring past them.
const HeadFormat = 2

// maxHead bounds what is read of a head record.
const maxHead = 64 << 10

// Head is the object head.json: the newest change known to be stored on
// the target, overwritten in place by the shipper after every segment it
// uploads and by a snapshot whose sequence is ahead of it. It lets verify
// and restore tell "the archive ends here" from "its end was lost".
type Head struct {
	FormatVersion int       `json:"format_version"`
	Sequence      uint64    `json:"sequence"`             // newest shipped change
	LastChange    time.Time `json:"last_change,omitzero"` // its commit time (zero when Sequence is 0)
	Segment       string    `json:"segment,omitempty"`    // key of the segment that ends at Sequence
	Snapshot      string    `json:"snapshot,omitempty"`   // or the id of the snapshot at Sequence
	Written       time.Time `json:"written"`              // when the record was written
	// Generation is the term of the primary that writes the archive
	// (format 2; absent means 1), and Generations the first sequence each
	// generation after the first owns, oldest first (see "Generations and
	// fencing" in the package doc).
	Generation  uint64     `json:"generation,omitempty"`
	Generations []GenStart `json:"generations,omitempty"`
	Digest      string     `json:"digest,omitempty"` // see jsonDigest
}

// GenStart is one entry of a head's generation history: generation
// Generation owns the sequences from First up to the next entry's First.
type GenStart struct {
	Generation uint64 `json:"generation"`
	First      uint64 `json:"first_sequence"`
}

// Gen is the head's generation (1 for a head without one; 1 for nil).
func (h *Head) Gen() uint64 {
	if h == nil || h.Generation == 0 {
		return 1
	}
	return h.Generation
}

// History is the full generation history: generation 1 from sequence 1,
// then the recorded entries.
func (h *Head) History() []GenStart {
	out := []GenStart{{Generation: 1, First: 1}}
	if h != nil {
		out = append(out, h.Generations...)
	}
	return out
}

// EncodeHead sets h.Digest and renders h as JSON.
func EncodeHead(h *Head) ([]byte, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	h.Digest = ""
	d, err := jsonDigest(h)
	if err != nil {
		return nil, err
	}
	h.Digest = d
	return json.Marshal(h)
}

// DecodeHead parses and checks a head record: ErrNewerFormat for a newer
// format, ErrCorrupt for anything malformed or not matching its digest. It
// never panics on arbitrary input.
func DecodeHead(b []byte) (*Head, error) {
	var h Head
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("%w: %s is not valid JSON: %v", ErrCorrupt, headKey, err)
	}
	if h.FormatVersion > HeadFormat {
		return nil, fmt.Errorf("%w: %s format %d, this binary reads up to %d. Try: a newer engram-ops", ErrNewerFormat, headKey, h.FormatVersion, HeadFormat)
	}
	c := h
	c.Digest = ""
	if err := checkDigest(headKey, h.Digest, &c, b, func() ([]byte, error) { return json.Marshal(&h) }); err != nil {
		return nil, err
	}
	if err := h.validate(); err != nil {
		return nil, err
	}
	return &h, nil
}

// validate checks that the record names what it claims consistently.
func (h *Head) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, headKey, fmt.Sprintf(format, args...))
	}
	if h.FormatVersion < 1 {
		return bad("format %d is invalid", h.FormatVersion)
	}
	if h.FormatVersion == 1 && (h.Generation != 0 || len(h.Generations) > 0) {
		return bad("format 1 with generation fields")
	}
	if h.FormatVersion >= 2 {
		if h.Generation < 2 || len(h.Generations) == 0 {
			return bad("format %d needs a generation of at least 2 and its history", h.FormatVersion)
		}
		prev := GenStart{Generation: 1, First: 1}
		for _, g := range h.Generations {
			if g.Generation <= prev.Generation || g.First < prev.First || g.First == 0 {
				return bad("generation history is not increasing at generation %d (first sequence %d)", g.Generation, g.First)
			}
			prev = g
		}
		if prev.Generation != h.Generation {
			return bad("generation %d, but its history ends at generation %d", h.Generation, prev.Generation)
		}
		if prev.First > h.Sequence+1 {
			return bad("generation %d starts at sequence %d, past the head's %d", h.Generation, prev.First, h.Sequence)
		}
	}
	if (h.Segment == "") == (h.Snapshot == "") {
		return bad("names neither or both a segment and a snapshot")
	}
	if h.Segment != "" {
		first, last, gen, ok := parseGenSegmentKey(h.Segment)
		// A promotion that was forced to start inside a segment of an
		// earlier generation names that segment.
		inside := ok && gen < h.Gen() && first <= h.Sequence && h.Sequence <= last
		if !ok || (last != h.Sequence && !inside) {
			return bad("segment %q does not end at sequence %d", h.Segment, h.Sequence)
		}
	}
	if h.Snapshot != "" {
		if _, seq, ok := parseSnapshotID(h.Snapshot); !ok || seq != h.Sequence {
			return bad("snapshot %q is not at sequence %d", h.Snapshot, h.Sequence)
		}
	}
	if (h.Sequence == 0) != h.LastChange.IsZero() {
		return bad("sequence %d with last change %q", h.Sequence, h.LastChange.UTC().Format(time.RFC3339Nano))
	}
	if h.Written.IsZero() {
		return bad("no written time")
	}
	return nil
}

// Head reads head.json; (nil, nil) when the target has none (an archive
// written before head records, or an empty one).
func (a *Archive) Head(ctx context.Context) (*Head, error) {
	b, err := a.readAll(ctx, headKey, maxHead)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return DecodeHead(b)
}

// headState is what the archive last read or wrote of head.json.
type headState struct {
	loaded bool
	tag    string // version tag; "" when there is no head.json
	raw    []byte // the stored bytes
	head   *Head  // nil when missing or unreadable
	err    error  // why head is unreadable
}

// loadHead reads head.json with its version tag (a.headMu held). Only a
// failure to read is returned; an unreadable record is kept in st.err.
func (a *Archive) loadHead(ctx context.Context, cs ConditionalStore) error {
	rc, tag, err := cs.GetTagged(ctx, headKey)
	if errors.Is(err, ErrNotFound) {
		a.head = headState{loaded: true}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", headKey, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxHead+1))
	if err != nil {
		return fmt.Errorf("read %s: %w", headKey, err)
	}
	st := headState{loaded: true, tag: tag, raw: b}
	if len(b) > maxHead {
		st.err = fmt.Errorf("%w: %s is larger than %d bytes", ErrCorrupt, headKey, maxHead)
	} else {
		st.head, st.err = DecodeHead(b)
	}
	a.head = st
	return nil
}

// startHead reads head.json for a writer starting: on a ConditionalStore
// with its version tag, which the writer's first head write must then
// match (a change by anyone else in between fails it).
func (a *Archive) startHead(ctx context.Context) (*Head, error) {
	cs, ok := a.store.(ConditionalStore)
	if !ok {
		return a.Head(ctx)
	}
	a.headMu.Lock()
	defer a.headMu.Unlock()
	if err := a.loadHead(ctx, cs); err != nil {
		a.head.loaded = false
		return nil, err
	}
	return a.head.head, a.head.err
}

// FencedError is returned by the head writes of an archive whose
// generation is no longer the archive's current one: another primary was
// promoted, and this one must not ship again.
type FencedError struct {
	Generation uint64 // this writer's generation
	Current    uint64 // the archive's generation found on the target
	Sequence   uint64 // the archive's head sequence found
	Reason     string // set when the head changed within the same generation
}

func (e *FencedError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("fenced: %s on the target (generation %d): %s; this writer stops shipping", headKey, e.Current, e.Reason)
	}
	return fmt.Sprintf("fenced: the archive is at generation %d (head at sequence %d) but this primary writes generation %d: another primary was promoted, and this one stops shipping. Try: make this server a follower of the new primary, or restore its data directory from the archive",
		e.Current, e.Sequence, e.Generation)
}

// ErrFenced matches a *FencedError with errors.Is.
var ErrFenced = errors.New("fenced")

// Is makes errors.Is(err, ErrFenced) match.
func (e *FencedError) Is(target error) bool { return target == ErrFenced }

// SetGeneration makes the archive write head.json as generation gen (0 or
// 1: generation 1). Its conditional head writes fail with a FencedError
// once the archive is at a later generation.
func (a *Archive) SetGeneration(gen uint64) {
	a.headMu.Lock()
	defer a.headMu.Unlock()
	a.gen = max(gen, 1)
}

// Generation is the generation the archive writes as (see SetGeneration).
func (a *Archive) Generation() uint64 {
	a.headMu.Lock()
	defer a.headMu.Unlock()
	return max(a.gen, 1)
}

// checkGeneration returns a FencedError when the head last read is of a
// later generation than this writer's (a.headMu held).
func (a *Archive) checkGeneration() error {
	cur := a.head.head.Gen()
	if mine := max(a.gen, 1); cur > mine {
		return &FencedError{Generation: mine, Current: cur, Sequence: a.head.head.Sequence}
	}
	return nil
}

// writeHead stores h as head.json. With onlyAhead (snapshots), it is
// written only when the stored head is missing, unreadable or behind h.
// In-process writers are serialised and a head never goes back behind one
// this archive wrote, so a snapshot racing the shipper cannot undo it.
//
// On a ConditionalStore the write replaces only the version of head.json
// this archive last read or wrote (creates it only if absent), and only
// while the archive's generation is this writer's: otherwise it returns a
// FencedError and writes nothing.
func (a *Archive) writeHead(ctx context.Context, h Head, onlyAhead bool) error {
	a.headMu.Lock()
	defer a.headMu.Unlock()
	cs, conditional := a.store.(ConditionalStore)
	// A snapshot reads head.json afresh: whether it is behind the head it
	// stores must not be judged on a head another generation replaced.
	if conditional && (!a.head.loaded || onlyAhead) {
		known, tag := a.head.loaded, a.head.tag
		if err := a.loadHead(ctx, cs); err != nil {
			a.head.loaded = false
			return err
		}
		if known && a.head.tag != tag {
			if err := a.reconcile(); err != nil {
				return err
			}
		}
	}
	if conditional {
		if err := a.checkGeneration(); err != nil {
			return err
		}
		// Fencing rests on the generation head.json records: a writer
		// that cannot read it does not replace it (that could resurrect a
		// fenced generation or drop a later one's history).
		if a.head.err != nil {
			return fmt.Errorf("%w; its generation is unknown, so it is not replaced. Try: engram-ops backup verify --from %s, then restore %s from the bucket's object versions", a.head.err, a.Target(), headKey)
		}
		if a.head.head == nil && a.gen > 1 {
			return fmt.Errorf("%s is missing on %s, which this primary writes as generation %d: the generation history is gone, so it is not recreated. Try: restore %s from the bucket's object versions", headKey, a.Target(), a.gen, headKey)
		}
	}
	if h.Sequence < a.headSeq {
		return nil
	}
	if onlyAhead {
		var (
			cur *Head
			err error
		)
		if conditional {
			cur, err = a.head.head, a.head.err
		} else {
			cur, err = a.Head(ctx)
		}
		switch {
		case err == nil && cur != nil && cur.Sequence >= h.Sequence:
			return nil
		case err != nil && !errors.Is(err, ErrCorrupt):
			return fmt.Errorf("read %s: %w", headKey, err)
		case err != nil:
			a.log.Warn("replacing an unreadable head record", "target", a.Target(), "key", headKey, "err", err)
		}
	}
	h.FormatVersion = 1
	if cur := a.head.head; cur != nil && cur.Gen() > 1 {
		h.FormatVersion, h.Generation, h.Generations = 2, cur.Generation, cur.Generations
	}
	h.Written = a.opts.Now().UTC()
	h.LastChange = h.LastChange.UTC()
	b, err := EncodeHead(&h)
	if err != nil {
		return err
	}
	if !conditional {
		if err := a.store.Put(ctx, headKey, bytes.NewReader(b), int64(len(b))); err != nil {
			return fmt.Errorf("write %s to %s: %w", headKey, a.Target(), err)
		}
		a.headSeq = h.Sequence
		return nil
	}
	if err := a.putHead(ctx, cs, b); err != nil {
		return err
	}
	a.head = headState{loaded: true, tag: a.head.tag, raw: b, head: &h}
	a.headSeq = h.Sequence
	return nil
}

// putHead stores b as head.json conditionally on the version in a.head and
// records the new tag (a.headMu held). A failed condition is resolved by
// reading head.json again: the record this writer sent (its response was
// lost and the request retried) is success; one it sent earlier with an
// unknown outcome is adopted and the write retried once; anything else is
// a FencedError.
func (a *Archive) putHead(ctx context.Context, cs ConditionalStore, b []byte) error {
	for attempt := 0; ; attempt++ {
		var (
			tag string
			err error
		)
		if a.head.tag == "" {
			tag, err = cs.PutIfAbsent(ctx, headKey, bytes.NewReader(b), int64(len(b)))
		} else {
			tag, err = cs.PutIfMatch(ctx, headKey, bytes.NewReader(b), int64(len(b)), a.head.tag)
		}
		if err == nil {
			a.head.tag, a.headSent = tag, nil
			return nil
		}
		if !errors.Is(err, ErrPrecondition) {
			// It may have been stored all the same (a lost response).
			a.headSent = b
			return fmt.Errorf("write %s to %s: %w", headKey, a.Target(), err)
		}
		if lerr := a.loadHead(ctx, cs); lerr != nil {
			a.head.loaded = false
			return fmt.Errorf("write %s to %s: %w (and reading it back: %v)", headKey, a.Target(), err, lerr)
		}
		if bytes.Equal(a.head.raw, b) {
			a.headSent = nil
			return nil
		}
		if rerr := a.reconcile(); rerr != nil {
			return rerr
		}
		if attempt > 0 {
			return fmt.Errorf("write %s to %s: %w", headKey, a.Target(), err)
		}
	}
}

// reconcile judges head.json just read again when its version is not the
// one this writer last read or wrote (a.headMu held): a later generation
// fences it; the bytes of an earlier write of its own whose outcome was
// unknown are its own; anything else is another writer of the same
// generation, which fences it too (two writers of one generation cannot
// be told apart).
func (a *Archive) reconcile() error {
	if err := a.checkGeneration(); err != nil {
		return err
	}
	if a.headSent != nil && bytes.Equal(a.head.raw, a.headSent) {
		a.headSent = nil
		return nil
	}
	reason := "it was replaced by another writer of this generation"
	if a.head.err != nil {
		reason = fmt.Sprintf("it was replaced by another writer and is unreadable (%v)", a.head.err)
	} else if a.head.head == nil {
		reason = "it was deleted by another writer"
	}
	return &FencedError{Generation: max(a.gen, 1), Current: a.head.head.Gen(), Reason: reason}
}
