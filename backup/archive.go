package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/engram-ops/engram-ops/core"
)

// Observer receives what the backup component measures; ops/metrics
// implements it with the engram_backup_* metrics of design brief §5. Every
// method must be safe for concurrent use.
type Observer interface {
	ShippedSequence(seq uint64)
	RPO(seconds float64)
	Success(kind string, at time.Time) // kind: snapshot | log
	Uploaded(bytes int64)
	Error(stage string) // stage: log, snapshot, resume, verify, restore
	Verified(at time.Time)
	RestoreDrill(d time.Duration)
	Generation(gen uint64) // the generation this primary ships as
	Fenced()               // shipping stopped: another generation took over the archive
}

type nopObserver struct{}

func (nopObserver) ShippedSequence(uint64)     {}
func (nopObserver) RPO(float64)                {}
func (nopObserver) Success(string, time.Time)  {}
func (nopObserver) Uploaded(int64)             {}
func (nopObserver) Error(string)               {}
func (nopObserver) Verified(time.Time)         {}
func (nopObserver) RestoreDrill(time.Duration) {}
func (nopObserver) Generation(uint64)          {}
func (nopObserver) Fenced()                    {}

// Event is one progress report. Long operations emit them through
// Options.Progress; the CLI renders them as log lines (or a bar on a terminal).
type Event struct {
	Op      string // snapshot, restore, verify, prune
	Stage   string // e.g. "upload", "download", "replay"
	Message string
	Done    int64 // units done (bytes or items), when known
	Total   int64 // units in all, 0 when unknown
}

// Options configure an Archive.
type Options struct {
	// Codec compresses and encrypts; nil means zstd without encryption.
	Codec *Codec
	// EngineOptions open engines on checkpoints and restores (embedders must
	// match the spaces' fingerprints). The zero value is the built-in defaults.
	EngineOptions core.Options
	Observer      Observer
	Progress      func(Event) // called serially, never concurrently
	Logger        *slog.Logger
	Now           func() time.Time
	// Parallel is the number of concurrent file transfers; default 4.
	Parallel int
}

// Archive is one backup target: snapshots, segments and files under an
// ObjectStore. It is safe for concurrent use.
type Archive struct {
	store ObjectStore
	codec *Codec
	opts  Options
	obs   Observer
	log   *slog.Logger

	progMu sync.Mutex // Progress is called by one goroutine at a time

	headMu  sync.Mutex // serialises head.json writes (writeHead)
	headSeq uint64     // the highest sequence this archive wrote to head.json
	head    headState  // head.json as last read or written (conditional stores)
	gen     uint64     // the generation this archive writes as (0: 1)
	// headSent is a head record whose conditional write failed without an
	// answer: it may be stored (see reconcile).
	headSent []byte
}

// New opens an archive on store.
func New(store ObjectStore, o Options) (*Archive, error) {
	if store == nil {
		return nil, errors.New("backup: no object store")
	}
	if o.Codec == nil {
		c, err := NewCodec(nil, nil)
		if err != nil {
			return nil, err
		}
		o.Codec = c
	}
	if o.Observer == nil {
		o.Observer = nopObserver{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	return &Archive{store: store, codec: o.Codec, opts: o, obs: o.Observer, log: o.Logger}, nil
}

// Target names the archive's store (without secrets).
func (a *Archive) Target() string { return a.store.String() }

// Store is the archive's object store.
func (a *Archive) Store() ObjectStore { return a.store }

func (a *Archive) progress(e Event) {
	if a.opts.Progress != nil {
		a.progMu.Lock()
		defer a.progMu.Unlock()
		a.opts.Progress(e)
	}
}

// engineOptions are the options for engines the archive opens itself: no
// background sweeping, and large pages for digesting.
func (a *Archive) engineOptions() core.Options {
	o := a.opts.EngineOptions
	o.Tiers.SweepInterval = 0
	if o.Limits.MaxResults < digestPage {
		o.Limits.MaxResults = digestPage
	}
	if o.Logger == nil {
		o.Logger = a.log
	}
	return o
}

// readAll reads a whole (small) object.
func (a *Archive) readAll(ctx context.Context, key string, limit int64) ([]byte, error) {
	r, err := a.store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrCorrupt, key, limit)
	}
	return b, nil
}

// SnapshotInfo is a listed snapshot: its manifest, or why it is unreadable.
type SnapshotInfo struct {
	ID       string
	Time     time.Time
	Sequence uint64
	Manifest *Manifest // nil when Err is set
	Err      error
}

// Snapshots lists every snapshot, oldest first, reading each manifest.
// Unreadable manifests are listed with Err set.
func (a *Archive) Snapshots(ctx context.Context) ([]SnapshotInfo, error) {
	ids, err := a.snapshotIDs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]SnapshotInfo, 0, len(ids))
	for _, id := range ids {
		t, seq, _ := parseSnapshotID(id)
		si := SnapshotInfo{ID: id, Time: t, Sequence: seq}
		si.Manifest, si.Err = a.Manifest(ctx, id)
		out = append(out, si)
	}
	return out, nil
}

// snapshotIDs lists the ids of the manifests on the target, oldest first
// (ids sort by time), without reading them.
func (a *Archive) snapshotIDs(ctx context.Context) ([]string, error) {
	objs, err := a.store.List(ctx, snapshotsPrefix)
	if err != nil {
		return nil, fmt.Errorf("list snapshots on %s: %w", a.Target(), err)
	}
	var ids []string
	for _, o := range objs {
		id, ok := strings.CutSuffix(strings.TrimPrefix(o.Key, snapshotsPrefix), ".json")
		if !ok {
			continue
		}
		if _, _, ok := parseSnapshotID(id); ok {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Manifest reads and validates one snapshot's manifest.
func (a *Archive) Manifest(ctx context.Context, id string) (*Manifest, error) {
	b, err := a.readAll(ctx, manifestKey(id), 64<<20)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("snapshot %s not found on %s. Try: engram-ops backup list --from %s", id, a.Target(), a.Target())
		}
		return nil, err
	}
	m, err := DecodeManifest(b)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", id, err)
	}
	if m.ID != id {
		return nil, fmt.Errorf("%w: snapshot %s: manifest names id %s", ErrCorrupt, id, m.ID)
	}
	return m, nil
}

// SegmentInfo is a listed change-log segment.
type SegmentInfo struct {
	Key         string
	First, Last uint64
	Generation  uint64 // the generation that wrote it (1 for keys without one)
	Size        int64
	Modified    time.Time
	// Limit, when set by SelectSegments, is the last sequence readers take
	// from the segment (the end of its generation's range or the head).
	Limit uint64
}

// End is the last sequence a reader takes from the segment.
func (s SegmentInfo) End() uint64 {
	if s.Limit > 0 && s.Limit < s.Last {
		return s.Limit
	}
	return s.Last
}

// StoredSegments lists every segment in sequence order, whichever
// generation wrote it: what is stored, for listing and pruning. Readers of
// the change log use Segments (or ChangeLog).
func (a *Archive) StoredSegments(ctx context.Context) ([]SegmentInfo, error) {
	objs, err := a.store.List(ctx, segmentsPrefix)
	if err != nil {
		return nil, fmt.Errorf("list segments on %s: %w", a.Target(), err)
	}
	out := make([]SegmentInfo, 0, len(objs))
	for _, o := range objs {
		f, l, g, ok := parseGenSegmentKey(o.Key)
		if !ok {
			continue
		}
		out = append(out, SegmentInfo{Key: o.Key, First: f, Last: l, Generation: g, Size: o.Size, Modified: o.Modified})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].First != out[j].First {
			return out[i].First < out[j].First
		}
		if out[i].Last != out[j].Last {
			return out[i].Last < out[j].Last
		}
		return out[i].Generation < out[j].Generation
	})
	return out, nil
}

// SelectSegments returns, in sequence order, the segments that make up the
// archive's change log according to head: for each sequence range only the
// segments of the generation that owns it in head's history, and nothing
// past head's sequence (a segment whose head write has not happened, or
// failed, is not yet part of the log). A segment that runs past its
// generation's range or the head is kept with Limit set to where readers
// stop in it. With a nil head (an archive written before head records) only
// generation 1 segments are taken, without a bound. This is the one rule
// every reader applies: restore, verify and a follower choosing what to
// apply.
func SelectSegments(segs []SegmentInfo, head *Head) []SegmentInfo {
	var bound uint64 = math.MaxUint64
	if head != nil {
		bound = head.Sequence
	}
	return selectSegments(segs, head, bound)
}

// selectSegments is SelectSegments with the bound given.
func selectSegments(segs []SegmentInfo, head *Head, bound uint64) []SegmentInfo {
	hist := head.History()
	var out []SegmentInfo
	for _, s := range segs {
		i := slices.IndexFunc(hist, func(g GenStart) bool { return g.Generation == s.Generation })
		if i < 0 {
			continue // a generation the history does not know: never promoted
		}
		end := bound
		if i+1 < len(hist) {
			end = min(end, hist[i+1].First-1)
		}
		if s.First < hist[i].First || s.First > end {
			continue // outside its generation's range: an orphan
		}
		if s.Last > end {
			s.Limit = end
		}
		out = append(out, s)
	}
	return out
}

// ChangeLog lists the segments and reads head.json, and returns the
// segments SelectSegments picks with the head they were picked by (nil
// when the target has none). A head.json that cannot be read is an error:
// without it the generations are unknown.
func (a *Archive) ChangeLog(ctx context.Context) ([]SegmentInfo, *Head, error) {
	head, err := a.Head(ctx)
	if err != nil {
		return nil, nil, err
	}
	segs, err := a.StoredSegments(ctx)
	if err != nil {
		return nil, nil, err
	}
	return SelectSegments(segs, head), head, nil
}

// ReadSegment downloads and decodes one segment, returning its changes up
// to s.End().
func (a *Archive) ReadSegment(ctx context.Context, s SegmentInfo) (SegmentHeader, []core.Change, error) {
	b, err := a.readAll(ctx, s.Key, maxSegmentPlain)
	if err != nil {
		return SegmentHeader{}, nil, err
	}
	h, ch, err := DecodeSegment(b, a.codec)
	if err != nil {
		return h, nil, fmt.Errorf("segment %s: %w", s.Key, err)
	}
	if h.FirstSeq != s.First || h.LastSeq != s.Last {
		return h, nil, fmt.Errorf("%w: segment %s holds sequences %d-%d", ErrCorrupt, s.Key, h.FirstSeq, h.LastSeq)
	}
	if n := s.End() - s.First + 1; uint64(len(ch)) > n {
		ch = ch[:n]
	}
	return h, ch, nil
}

// Segments returns, in sequence order, the change log as readers take it:
// the stored segments SelectSegments picks by head.json. An unreadable
// head.json is not an error here (restore still restores what it can, and
// reports that it cannot tell whether that is everything): the segments
// are then selected as for an archive without a head. Use ChangeLog to
// have the head too, and StoredSegments for everything stored.
func (a *Archive) Segments(ctx context.Context) ([]SegmentInfo, error) {
	segs, err := a.StoredSegments(ctx)
	if err != nil {
		return nil, err
	}
	head, err := a.Head(ctx)
	if err != nil {
		head = nil
	}
	return SelectSegments(segs, head), nil
}

const digestPage = 2000

// digestEngine computes the content digest (see the package doc) and the
// per-space counts of an open engine.
func digestEngine(ctx context.Context, eng *core.Engine) (string, []Space, error) {
	h := newDigest()
	stats := eng.Spaces()
	sort.Slice(stats, func(i, j int) bool { return stats[i].Name < stats[j].Name })
	var spaces []Space
	for _, st := range stats {
		spaces = append(spaces, Space{Name: st.Name, Dimension: st.Dimension, Fingerprint: st.Fingerprint,
			Memories: st.Total(), Associations: st.Associations})
		err := eng.ScanMemories(ctx, st.Name, true, func(m core.Memory) error {
			h.memory(st.Name, &m)
			return nil
		})
		if err != nil {
			return "", nil, fmt.Errorf("digest space %s: %w", st.Name, err)
		}
	}
	return h.sum(), spaces, nil
}

type digest struct {
	h   hashWriter
	buf []byte
}

func (d *digest) str(s string) {
	d.buf = appendUvarint(d.buf[:0], uint64(len(s)))
	d.buf = append(d.buf, s...)
	d.h.Write(d.buf)
}

func (d *digest) memory(space string, m *core.Memory) {
	d.str(space)
	d.str(m.ID)
	d.str(m.Content)
	d.buf = appendUvarint(d.buf[:0], uint64(len(m.Embedding)))
	for _, f := range m.Embedding {
		b := math.Float32bits(f)
		d.buf = append(d.buf, byte(b), byte(b>>8), byte(b>>16), byte(b>>24))
	}
	d.h.Write(d.buf)
}
