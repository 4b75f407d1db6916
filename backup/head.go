package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// headKey is the head record: the newest change shipped to the target.
const headKey = "head.json"

// HeadFormat is the head record format this binary writes and the newest
// it reads.
const HeadFormat = 1

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
	Digest        string    `json:"digest,omitempty"`     // see jsonDigest
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
	if (h.Segment == "") == (h.Snapshot == "") {
		return bad("names neither or both a segment and a snapshot")
	}
	if h.Segment != "" {
		if _, last, ok := parseSegmentKey(h.Segment); !ok || last != h.Sequence {
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

// writeHead stores h as head.json. With onlyAhead (snapshots), it is
// written only when the stored head is missing, unreadable or behind h.
// In-process writers are serialised and a head never goes back behind one
// this archive wrote, so a snapshot racing the shipper cannot undo it.
func (a *Archive) writeHead(ctx context.Context, h Head, onlyAhead bool) error {
	a.headMu.Lock()
	defer a.headMu.Unlock()
	if h.Sequence < a.headSeq {
		return nil
	}
	if onlyAhead {
		cur, err := a.Head(ctx)
		switch {
		case err == nil && cur != nil && cur.Sequence >= h.Sequence:
			return nil
		case err != nil && !errors.Is(err, ErrCorrupt):
			return fmt.Errorf("read %s: %w", headKey, err)
		case err != nil:
			a.log.Warn("replacing an unreadable head record", "target", a.Target(), "key", headKey, "err", err)
		}
	}
	h.FormatVersion = HeadFormat
	h.Written = a.opts.Now().UTC()
	h.LastChange = h.LastChange.UTC()
	b, err := EncodeHead(&h)
	if err != nil {
		return err
	}
	if err := a.store.Put(ctx, headKey, bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("write %s to %s: %w", headKey, a.Target(), err)
	}
	a.headSeq = h.Sequence
	return nil
}
