package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// Format versions this binary writes and the newest it reads.
//
// Manifest format 2 added Manifest.Digest; format-1 manifests (no digest)
// are still read, and verify warns about them.
const (
	ManifestFormat = 2
	SegmentFormat  = 1
)

// Key prefixes under the target.
const (
	filesPrefix     = "files/"
	snapshotsPrefix = "snapshots/"
	segmentsPrefix  = "segments/"
)

// ErrCorrupt is wrapped by every error about damaged or unreadable backup
// objects (checksum mismatch, truncation, undecodable data).
var ErrCorrupt = errors.New("backup object is corrupt")

// ErrNewerFormat is wrapped when an object was written by a newer engram-ops.
var ErrNewerFormat = errors.New("backup format is newer than this binary supports")

// Manifest describes one snapshot. It is stored as snapshots/<id>.json.
type Manifest struct {
	FormatVersion int       `json:"format_version"`
	ID            string    `json:"id"`
	Sequence      uint64    `json:"sequence"`         // engine change-log sequence the snapshot contains
	LastChange    time.Time `json:"last_change"`      // commit time of change Sequence (zero when Sequence is 0)
	Created       time.Time `json:"created"`          // when the checkpoint was taken
	Files         []File    `json:"files"`            // every file of the checkpoint
	Spaces        []Space   `json:"spaces"`           // per-space counts and embedder fingerprints
	ContentDigest string    `json:"content_digest"`   // see the package doc
	Encryption    Encrypt   `json:"encryption"`       // how files were encrypted
	Source        string    `json:"source,omitempty"` // "server" or "data-dir"
	// Digest is "sha256:" + hex of SHA-256 over the manifest's compact JSON
	// encoding with Digest empty (see jsonDigest); set by EncodeManifest,
	// checked by DecodeManifest. Empty only in format 1.
	Digest string `json:"digest,omitempty"`
}

// File is one engine file of a snapshot.
type File struct {
	Path       string `json:"path"`        // slash-separated path inside the data directory, e.g. db/000012.sst
	SHA256     string `json:"sha256"`      // hex of the plain bytes
	Size       int64  `json:"size"`        // plain size
	Key        string `json:"key"`         // stored object key
	StoredSize int64  `json:"stored_size"` // compressed (and encrypted) size
}

// Space is a space as the snapshot contains it.
type Space struct {
	Name         string `json:"name"`
	Dimension    int    `json:"dimension"`
	Fingerprint  string `json:"embedder_fingerprint"`
	Memories     int64  `json:"memories"`
	Associations int64  `json:"associations"`
}

// Encrypt records the encryption of a snapshot's files or a segment's body.
type Encrypt struct {
	Scheme     string   `json:"scheme"`               // "none" or "age"
	Recipients []string `json:"recipients,omitempty"` // age public keys (the key ids)
}

// PlainBytes is the sum of the plain sizes of the snapshot's files.
func (m *Manifest) PlainBytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// StoredBytes is the sum of the stored sizes of the snapshot's files.
func (m *Manifest) StoredBytes() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.StoredSize
	}
	return n
}

// Memories is the total number of memories over every space.
func (m *Manifest) Memories() int64 {
	var n int64
	for _, s := range m.Spaces {
		n += s.Memories
	}
	return n
}

var (
	snapshotIDRe = regexp.MustCompile(`^(\d{8}T\d{6}Z)-(\d{20})$`)
	hexSHARe     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	segmentKeyRe = regexp.MustCompile(`^segments/(\d{20})-(\d{20})(?:\.g(\d{1,20}))?\.seg$`)
)

// SnapshotID builds the id of a snapshot taken at t containing seq.
func SnapshotID(t time.Time, seq uint64) string {
	return fmt.Sprintf("%s-%020d", t.UTC().Format("20060102T150405Z"), seq)
}

// parseSnapshotID splits an id into its time and sequence.
func parseSnapshotID(id string) (time.Time, uint64, bool) {
	m := snapshotIDRe.FindStringSubmatch(id)
	if m == nil {
		return time.Time{}, 0, false
	}
	t, err := time.Parse("20060102T150405Z", m[1])
	if err != nil {
		return time.Time{}, 0, false
	}
	seq, err := strconv.ParseUint(m[2], 10, 64)
	if err != nil {
		return time.Time{}, 0, false
	}
	return t, seq, true
}

func manifestKey(id string) string { return snapshotsPrefix + id + ".json" }

func fileKey(sum string, encrypted bool) string {
	if encrypted {
		return filesPrefix + sum + ".zst.age"
	}
	return filesPrefix + sum + ".zst"
}

// segmentKey names the segment holding changes first..last written by
// generation 1 (or an archive without generations).
func segmentKey(first, last uint64) string {
	return genSegmentKey(first, last, 1)
}

// genSegmentKey names the segment holding changes first..last written by
// generation gen: generation 1 keeps the key it always had, later ones add
// ".g<gen>" so that two generations never write one key.
func genSegmentKey(first, last, gen uint64) string {
	if gen <= 1 {
		return fmt.Sprintf("%s%020d-%020d.seg", segmentsPrefix, first, last)
	}
	return fmt.Sprintf("%s%020d-%020d.g%d.seg", segmentsPrefix, first, last, gen)
}

// parseGenSegmentKey returns the sequence range and the generation a
// segment key names. ".g1" is not a key genSegmentKey writes, so it is not
// a segment.
func parseGenSegmentKey(key string) (first, last, gen uint64, ok bool) {
	m := segmentKeyRe.FindStringSubmatch(key)
	if m == nil {
		return 0, 0, 0, false
	}
	f, err1 := strconv.ParseUint(m[1], 10, 64)
	l, err2 := strconv.ParseUint(m[2], 10, 64)
	if err1 != nil || err2 != nil || f == 0 || l < f {
		return 0, 0, 0, false
	}
	gen = 1
	if m[3] != "" {
		g, err := strconv.ParseUint(m[3], 10, 64)
		if err != nil || g < 2 || m[3][0] == '0' {
			return 0, 0, 0, false
		}
		gen = g
	}
	return f, l, gen, true
}

// EncodeManifest sets m.Digest (format 2 and later) and renders m as
// indented JSON.
func EncodeManifest(m *Manifest) ([]byte, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	m.Digest = ""
	if m.FormatVersion >= 2 {
		d, err := jsonDigest(m)
		if err != nil {
			return nil, err
		}
		m.Digest = d
	}
	return json.MarshalIndent(m, "", "  ")
}

// jsonDigest is the digest of a metadata object (manifest, head record,
// verify result): "sha256:" + hex of SHA-256 over v's compact encoding/json
// form, fields in declaration order. v's own digest field must be empty
// (it is omitempty, so it is left out). Decoders re-encode what they parsed
// and compare, so a flipped bit in any field, name or value changes it.
func jsonDigest(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return "sha256:" + hexSum(b), nil
}

// checkDigest compares a decoded object's recorded digest with the one
// computed over it (v, its digest field empty), and its stored bytes with
// what encode renders of it (the decoded object, digest set): the encoding
// is deterministic, so a change that JSON would decode the same (the case
// of a key, say) is caught too. what names the object in the error.
func checkDigest(what, recorded string, v any, stored []byte, encode func() ([]byte, error)) error {
	if recorded == "" {
		return fmt.Errorf("%w: %s has no digest", ErrCorrupt, what)
	}
	got, err := jsonDigest(v)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, what, err)
	}
	if got != recorded {
		return fmt.Errorf("%w: %s does not match its digest (recorded %.19s…, computed %.19s…): it was altered or damaged after it was written", ErrCorrupt, what, recorded, got)
	}
	if canon, err := encode(); err != nil || !bytes.Equal(canon, stored) {
		return fmt.Errorf("%w: %s is not stored as it was written (its bytes differ from its canonical encoding): it was altered or damaged after it was written", ErrCorrupt, what)
	}
	return nil
}

// DecodeManifest parses and validates a manifest. A manifest written by a
// newer format is refused with ErrNewerFormat; anything malformed with
// ErrCorrupt. It never panics on arbitrary input.
func DecodeManifest(b []byte) (*Manifest, error) {
	var head struct {
		FormatVersion *int `json:"format_version"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, fmt.Errorf("%w: manifest is not valid JSON: %v", ErrCorrupt, err)
	}
	if head.FormatVersion == nil {
		return nil, fmt.Errorf("%w: manifest has no format_version", ErrCorrupt)
	}
	if v := *head.FormatVersion; v > ManifestFormat {
		return nil, fmt.Errorf("%w: manifest format %d, this binary reads up to %d. Try: restore with a newer engram-ops", ErrNewerFormat, v, ManifestFormat)
	} else if v < 1 {
		return nil, fmt.Errorf("%w: manifest format %d is invalid", ErrCorrupt, v)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	if m.FormatVersion >= 2 || m.Digest != "" {
		c := m
		c.Digest = ""
		if err := checkDigest("manifest "+m.ID, m.Digest, &c, b, func() ([]byte, error) { return json.MarshalIndent(&m, "", "  ") }); err != nil {
			return nil, err
		}
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// HasDigest reports whether the manifest carries a digest (format 2 and
// later); a format-1 manifest's bytes are not self-checking.
func (m *Manifest) HasDigest() bool { return m.Digest != "" }

// validate checks what restore relies on: paths stay inside the data
// directory, keys and checksums are well-formed, the id matches the sequence.
func (m *Manifest) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: manifest %s: %s", ErrCorrupt, m.ID, fmt.Sprintf(format, args...))
	}
	idTime, seq, ok := parseSnapshotID(m.ID)
	if !ok {
		return bad("id is not <time>-<sequence>")
	}
	if seq != m.Sequence {
		return bad("id names sequence %d but the manifest says %d", seq, m.Sequence)
	}
	// The id is made of Created (to the second) and Sequence; LastChange
	// is the commit time of change Sequence, which the checkpoint taken at
	// Created contains.
	if !m.Created.UTC().Truncate(time.Second).Equal(idTime) {
		return bad("id names time %s but the manifest says it was created at %s", idTime.Format(time.RFC3339), m.Created.UTC().Format(time.RFC3339Nano))
	}
	if m.Sequence == 0 && !m.LastChange.IsZero() {
		return bad("sequence 0 (no change) with a last change at %s", m.LastChange.UTC().Format(time.RFC3339Nano))
	}
	if m.Sequence > 0 && m.LastChange.IsZero() {
		return bad("sequence %d without the time of its last change", m.Sequence)
	}
	// Format 1 writers took Created before the checkpoint, so a change
	// committed meanwhile could be later than it.
	if m.FormatVersion >= 2 && m.LastChange.After(m.Created) {
		return bad("last change %s is after the snapshot was created (%s)", m.LastChange.UTC().Format(time.RFC3339Nano), m.Created.UTC().Format(time.RFC3339Nano))
	}
	switch m.Encryption.Scheme {
	case "none":
	case "age":
		if len(m.Encryption.Recipients) == 0 {
			return bad("age encryption without a recipient")
		}
	default:
		return bad("unknown encryption scheme %q", m.Encryption.Scheme)
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if f.Path == "" || path.IsAbs(f.Path) || path.Clean(f.Path) != f.Path || strings.HasPrefix(f.Path, "../") || f.Path == ".." || strings.Contains(f.Path, "\\") {
			return bad("file path %q is not a clean relative path", f.Path)
		}
		if seen[f.Path] {
			return bad("file %q listed twice", f.Path)
		}
		seen[f.Path] = true
		if !hexSHARe.MatchString(f.SHA256) {
			return bad("file %q has a malformed sha256", f.Path)
		}
		if f.Key != fileKey(f.SHA256, m.Encryption.Scheme == "age") {
			return bad("file %q has stored key %q, want %q", f.Path, f.Key, fileKey(f.SHA256, m.Encryption.Scheme == "age"))
		}
		if f.Size < 0 || f.StoredSize < 0 {
			return bad("file %q has a negative size", f.Path)
		}
	}
	for _, s := range m.Spaces {
		if s.Memories < 0 || s.Associations < 0 || s.Dimension < 0 {
			return bad("space %q has negative counts", s.Name)
		}
	}
	return nil
}

// SegmentHeader is the plain header of a change-log segment.
type SegmentHeader struct {
	FormatVersion int       `json:"format_version"`
	FirstSeq      uint64    `json:"first_seq"`
	LastSeq       uint64    `json:"last_seq"`
	FirstTime     time.Time `json:"first_time"`
	LastTime      time.Time `json:"last_time"`
	Count         int       `json:"count"`
	Compression   string    `json:"compression"` // "zstd"
	Encryption    Encrypt   `json:"encryption"`
}

// Segment object layout (all integers big-endian):
//
//	"EGSEG" | u8 format | u32 header length | header JSON | body | sha256 of all before it
//
// body = zstd (then age, when encrypted) of: repeated { uvarint length | core.EncodeChange bytes }.
var segmentMagic = []byte("EGSEG")

const (
	maxSegmentHeader = 64 << 10
	maxSegmentPlain  = 1 << 30 // decompressed body bound: a corrupt object must not exhaust memory
)

// EncodeSegment builds a segment object from contiguous changes.
func EncodeSegment(changes []core.Change, c *Codec) ([]byte, SegmentHeader, error) {
	if len(changes) == 0 {
		return nil, SegmentHeader{}, errors.New("empty segment")
	}
	h := SegmentHeader{
		FormatVersion: SegmentFormat,
		FirstSeq:      changes[0].Seq,
		LastSeq:       changes[len(changes)-1].Seq,
		FirstTime:     changes[0].Time.UTC(),
		LastTime:      changes[len(changes)-1].Time.UTC(),
		Count:         len(changes),
		Compression:   "zstd",
		Encryption:    c.encryption(),
	}
	var plain []byte
	for i := range changes {
		if i > 0 && changes[i].Seq != changes[i-1].Seq+1 {
			return nil, h, fmt.Errorf("segment changes are not contiguous: %d after %d", changes[i].Seq, changes[i-1].Seq)
		}
		rec := core.EncodeChange(&changes[i])
		plain = binary.AppendUvarint(plain, uint64(len(rec)))
		plain = append(plain, rec...)
	}
	body, err := c.sealBytes(plain)
	if err != nil {
		return nil, h, err
	}
	hj, err := json.Marshal(h)
	if err != nil {
		return nil, h, err
	}
	var buf bytes.Buffer
	buf.Write(segmentMagic)
	buf.WriteByte(SegmentFormat)
	_ = binary.Write(&buf, binary.BigEndian, uint32(len(hj)))
	buf.Write(hj)
	buf.Write(body)
	sum := sha256.Sum256(buf.Bytes())
	buf.Write(sum[:])
	return buf.Bytes(), h, nil
}

// DecodeSegmentHeader checks a segment object's trailer checksum and
// format, and returns its header and sealed body.
func DecodeSegmentHeader(b []byte) (SegmentHeader, []byte, error) {
	var h SegmentHeader
	min := len(segmentMagic) + 1 + 4 + sha256.Size
	if len(b) < min {
		return h, nil, fmt.Errorf("%w: segment is truncated (%d bytes)", ErrCorrupt, len(b))
	}
	if !bytes.Equal(b[:len(segmentMagic)], segmentMagic) {
		return h, nil, fmt.Errorf("%w: not a change-log segment (bad magic)", ErrCorrupt)
	}
	if v := int(b[len(segmentMagic)]); v > SegmentFormat {
		return h, nil, fmt.Errorf("%w: segment format %d, this binary reads up to %d. Try: a newer engram-ops", ErrNewerFormat, v, SegmentFormat)
	} else if v < 1 {
		return h, nil, fmt.Errorf("%w: segment format %d is invalid", ErrCorrupt, v)
	}
	body := b[:len(b)-sha256.Size]
	if sum := sha256.Sum256(body); !bytes.Equal(sum[:], b[len(b)-sha256.Size:]) {
		return h, nil, fmt.Errorf("%w: segment checksum mismatch (truncated or damaged)", ErrCorrupt)
	}
	p := len(segmentMagic) + 1
	hl := int(binary.BigEndian.Uint32(body[p:]))
	p += 4
	if hl > maxSegmentHeader || hl > len(body)-p {
		return h, nil, fmt.Errorf("%w: segment header length %d out of bounds", ErrCorrupt, hl)
	}
	if err := json.Unmarshal(body[p:p+hl], &h); err != nil {
		return h, nil, fmt.Errorf("%w: segment header: %v", ErrCorrupt, err)
	}
	if h.FormatVersion != int(b[len(segmentMagic)]) {
		return h, nil, fmt.Errorf("%w: segment header format %d disagrees with its prefix", ErrCorrupt, h.FormatVersion)
	}
	if h.FirstSeq == 0 || h.LastSeq < h.FirstSeq || h.LastSeq-h.FirstSeq+1 != uint64(h.Count) || h.Compression != "zstd" {
		return h, nil, fmt.Errorf("%w: segment header is inconsistent (seq %d-%d, count %d, compression %q)", ErrCorrupt, h.FirstSeq, h.LastSeq, h.Count, h.Compression)
	}
	return h, body[p+hl:], nil
}

// DecodeSegment checks and decodes a whole segment object. c supplies the
// identities for an encrypted body.
func DecodeSegment(b []byte, c *Codec) (SegmentHeader, []core.Change, error) {
	h, sealed, err := DecodeSegmentHeader(b)
	if err != nil {
		return h, nil, err
	}
	plain, err := c.openBytes(sealed, h.Encryption, maxSegmentPlain)
	if err != nil {
		return h, nil, err
	}
	out := make([]core.Change, 0, min(h.Count, 1<<16))
	for len(plain) > 0 {
		n, k := binary.Uvarint(plain)
		if k <= 0 || n > uint64(len(plain)-k) {
			return h, nil, fmt.Errorf("%w: segment record %d is truncated", ErrCorrupt, len(out))
		}
		ch, err := core.DecodeChange(plain[k : k+int(n)])
		if err != nil {
			return h, nil, fmt.Errorf("%w: segment record %d: %v", ErrCorrupt, len(out), err)
		}
		if want := h.FirstSeq + uint64(len(out)); ch.Seq != want {
			return h, nil, fmt.Errorf("%w: segment record %d has sequence %d, want %d", ErrCorrupt, len(out), ch.Seq, want)
		}
		out = append(out, ch)
		plain = plain[k+int(n):]
	}
	if len(out) != h.Count {
		return h, nil, fmt.Errorf("%w: segment holds %d changes, header says %d", ErrCorrupt, len(out), h.Count)
	}
	// Commit times are not monotonic (a change's time is taken before its
	// sequence, and clocks step), so only the ends are cross-checked.
	if first, last := out[0].Time, out[len(out)-1].Time; !first.Equal(h.FirstTime) || !last.Equal(h.LastTime) {
		return h, nil, fmt.Errorf("%w: segment header says its changes were committed %s to %s, the changes say %s to %s", ErrCorrupt,
			h.FirstTime.UTC().Format(time.RFC3339Nano), h.LastTime.UTC().Format(time.RFC3339Nano), first.UTC().Format(time.RFC3339Nano), last.UTC().Format(time.RFC3339Nano))
	}
	return h, out, nil
}

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
