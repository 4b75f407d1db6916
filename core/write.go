package core

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/engram-ops/engram-ops/core/vector"
)

const (
	defaultConfidence    = 0.7
	defaultLinkThreshold = 0.7
	maxAutoLinks         = 5
	maxKindBytes         = 64
)

// prepared is a validated memory ready to write: the Memory (with its
// original embedding) and the normalised vector for the index.
type prepared struct {
	m Memory
	// norm is the normalised vector, in a scratch buffer (release) until
	// the committed transaction copies it into a slab.
	norm    []float32
	scratch *[]float32
	// derived: the embedding was computed by the space's embedder, not sent
	// by the client.
	derived bool
}

// prepare validates in and fills defaults; it embeds nothing (see embedAll).
func (e *Engine) prepare(sp *space, in *RememberInput, now time.Time) (*prepared, error) {
	lim := e.opts.Limits
	content := in.Content
	if in.Episode != nil && strings.TrimSpace(content) == "" {
		content = in.Episode.What
	}
	if strings.TrimSpace(content) == "" {
		return nil, Errorf(KindInvalid, "EMPTY_CONTENT", "content is empty; a memory needs text to remember")
	}
	if len(content) > lim.MaxContentBytes {
		return nil, Errorf(KindTooLarge, "CONTENT_TOO_LARGE", "content is %d bytes; the limit is %d bytes", len(content), lim.MaxContentBytes).WithDetails("limit", lim.MaxContentBytes, "actual", len(content))
	}
	conf := defaultConfidence
	if in.Confidence != nil {
		conf = *in.Confidence
		if math.IsNaN(conf) || conf < 0 || conf > 1 {
			return nil, Errorf(KindInvalid, "INVALID_CONFIDENCE", "confidence %v is outside 0..1", conf).WithDetails("min", 0, "max", 1)
		}
	}
	typ := in.Type
	switch typ {
	case "":
		typ = Semantic
		if in.Episode != nil {
			typ = Episodic
		}
	case Semantic, Episodic, Procedural:
	default:
		lt := MemoryType(lower(string(typ)))
		if lt != Semantic && lt != Episodic && lt != Procedural {
			return nil, Errorf(KindInvalid, "INVALID_MEMORY_TYPE", "memory_type %q is not one of semantic, episodic, procedural", truncate(string(typ), 40))
		}
		typ = lt
	}
	if len(in.Tags) > lim.MaxTags {
		return nil, Errorf(KindInvalid, "TOO_MANY_TAGS", "%d tags; the limit is %d", len(in.Tags), lim.MaxTags)
	}
	for _, tag := range in.Tags {
		if tag == "" || len(tag) > 256 {
			return nil, Errorf(KindInvalid, "INVALID_TAG", "tags must be 1-256 bytes")
		}
	}
	if len(in.Metadata) > lim.MaxMetadata {
		return nil, Errorf(KindInvalid, "TOO_MANY_METADATA", "%d metadata entries; the limit is %d", len(in.Metadata), lim.MaxMetadata)
	}
	for k, v := range in.Metadata {
		if k == "" || len(k) > 256 || len(v) > 4096 {
			return nil, Errorf(KindInvalid, "INVALID_METADATA", "metadata keys must be 1-256 bytes and values at most 4096 bytes")
		}
	}
	id := in.ID
	if id == "" {
		prefix := "mem_"
		if typ == Episodic && in.Episode != nil {
			prefix = "ep_"
		}
		id = e.ids.next(prefix, now)
	} else if err := validateID(id, lim.MaxIDBytes); err != nil {
		return nil, err
	}
	if in.LinkThreshold != 0 {
		if err := validateFinite(in.LinkThreshold, "INVALID_LINK_THRESHOLD", "link_threshold"); err != nil {
			return nil, err
		}
		if in.LinkThreshold < -1 || in.LinkThreshold > 1 {
			return nil, Errorf(KindInvalid, "INVALID_LINK_THRESHOLD", "link_threshold %v is outside -1..1", in.LinkThreshold)
		}
	}
	if in.Embedding != nil {
		if err := validateVector(in.Embedding, sp.info.Dimension, "embedding"); err != nil {
			return nil, err
		}
	}
	if ep := in.Episode; ep != nil {
		if ep.When.IsZero() {
			return nil, Errorf(KindInvalid, "INVALID_EPISODE", "episode needs 'when'")
		}
		for _, f := range []*float64{ep.EmotionalValence, ep.Importance} {
			if f != nil {
				if err := validateFinite(*f, "INVALID_EPISODE", "episode numbers"); err != nil {
					return nil, err
				}
			}
		}
	}
	observed := in.ObservedAt
	if observed.IsZero() {
		observed = now
		if in.Episode != nil {
			observed = in.Episode.When
		}
	}
	p := &prepared{m: Memory{
		Space:      sp.info.Name,
		ID:         id,
		Content:    content,
		Embedding:  in.Embedding,
		Confidence: conf,
		Type:       typ,
		Tags:       in.Tags,
		Metadata:   in.Metadata,
		Episode:    in.Episode,
		ObservedAt: observed.UTC(),
		StoredAt:   now,
		LastAccess: now,
		Stability:  initialStability(e.opts.Tiers.InitialStability, conf),
		Tier:       TierWarm,
	}}
	return p, nil
}

// release gives p's scratch vector back; call it once the write has
// returned (its transaction copied what it keeps).
func (p *prepared) release() {
	if p != nil && p.scratch != nil {
		scratchVecs.Put(p.scratch)
		p.scratch, p.norm = nil, nil
	}
}

// embedAll fills missing embeddings with one embedder call, then normalises
// each vector into a scratch buffer (see prepared.release).
func (e *Engine) embedAll(ctx context.Context, sp *space, ps []*prepared) error {
	var texts []string
	var idx []int
	into, direct := sp.embedder.(embedsInto)
	direct = direct && deterministic(sp.embedder)
	for i, p := range ps {
		switch {
		case p.m.Embedding != nil:
		case direct:
			// Straight into the scratch buffer, saving the embedder's
			// allocation. The vector is neither logged nor stored
			// (replay and reads recompute it), so the memory keeps no
			// embedding of its own.
			p.scratch = getScratchVec(sp.info.Dimension)
			p.norm = *p.scratch
			into.EmbedInto(p.norm, p.m.Content)
			if err := validateVector(p.norm, sp.info.Dimension, "embedder output"); err != nil {
				return err
			}
			vector.NormalizeInPlace(p.norm)
			p.derived = true
		default:
			texts = append(texts, p.m.Content)
			idx = append(idx, i)
		}
	}
	if len(texts) > 0 {
		vecs, err := sp.embedder.Embed(ctx, texts)
		if err != nil {
			return &Error{Kind: KindUnavailable, Code: "EMBEDDER_FAILED", Message: "embedding the content failed", Err: err}
		}
		if len(vecs) != len(texts) {
			return Errorf(KindInternal, "EMBEDDER_FAILED", "embedder returned %d vectors for %d texts", len(vecs), len(texts))
		}
		for j, i := range idx {
			if err := validateVector(vecs[j], sp.info.Dimension, "embedder output"); err != nil {
				return err
			}
			ps[i].m.Embedding = vecs[j]
			ps[i].derived = true
		}
	}
	for _, p := range ps {
		if p.norm == nil {
			p.scratch = getScratchVec(len(p.m.Embedding))
			p.norm = *p.scratch
			copy(p.norm, p.m.Embedding)
			vector.NormalizeInPlace(p.norm)
		}
	}
	return nil
}

// embedsInto is an embedder that writes one text's vector into the caller's
// buffer (embed.Hashing), saving a vector's allocation and copy per write.
type embedsInto interface {
	EmbedInto(dst []float32, text string)
}

// Remember stores one memory (overwriting an existing id) and, when asked,
// links it to similar memories.
func (e *Engine) Remember(ctx context.Context, spaceName string, in RememberInput) (RememberResult, error) {
	if err := e.checkOpen(); err != nil {
		return RememberResult{}, err
	}
	now := e.now().UTC()
	sp, err := e.spaceForWrite(ctx, spaceName, func(sp *space) error {
		_, err := e.prepare(sp, &in, now)
		return err
	})
	if err != nil {
		return RememberResult{}, err
	}
	p, err := e.prepare(sp, &in, now)
	if err != nil {
		return RememberResult{}, err
	}
	defer p.release()
	admitted, err := e.admit(ctx, sp, 1)
	if err != nil {
		return RememberResult{}, err
	}
	defer admitted()
	if err := e.embedAll(ctx, sp, []*prepared{p}); err != nil {
		return RememberResult{}, err
	}
	if err := ctxErr(ctx); err != nil {
		return RememberResult{}, err
	}
	var links []AutoLink
	if in.AutoLink {
		th := in.LinkThreshold
		if th == 0 {
			th = defaultLinkThreshold
		}
		for _, h := range e.similar(sp, p.norm, maxAutoLinks+1, false, nil) {
			if h.id != p.m.ID && float64(h.score) >= th && len(links) < maxAutoLinks {
				links = append(links, AutoLink{TargetID: h.id, Similarity: float64(h.score)})
			}
		}
	}
	res := RememberResult{ID: p.m.ID, Confidence: p.m.Confidence, ObservedAt: p.m.ObservedAt}
	seq, err := e.commit(commitAcked, func(t *txn) error {
		p.m.StoredAt, p.m.LastAccess = t.now, t.now
		res.StoredAt = t.now
		created, err := t.putMemory(sp, &p.m, p.norm, p.derived)
		if err != nil {
			return err
		}
		res.Created = created
		kept := links[:0]
		for _, l := range links {
			if !sp.has(l.TargetID) {
				continue // forgotten since the search
			}
			w := math.Max(l.Similarity, 0.01)
			t.putAssociation(sp, Association{From: p.m.ID, To: l.TargetID, Weight: w, Kind: "auto"})
			t.putAssociation(sp, Association{From: l.TargetID, To: p.m.ID, Weight: w, Kind: "auto"})
			kept = append(kept, l)
		}
		res.AutoLinks = kept
		return nil
	})
	if err != nil {
		return RememberResult{}, err
	}
	res.Seq = seq
	e.kickIndexer()
	return res, nil
}

// deterministic reports whether emb promises the same vector for the same
// text (see embed.Hashing.Deterministic).
func deterministic(emb Embedder) bool {
	d, ok := emb.(interface{ Deterministic() bool })
	return ok && d.Deterministic()
}

func (sp *space) has(id string) bool {
	sp.mu.RLock()
	defer sp.mu.RUnlock()
	_, ok := sp.byID[id]
	return ok
}

// putMemory writes m (with embedding) under a fresh slot; created is false
// when it replaced a memory with the same id. norm, the normalised vector,
// is copied into a slab once the transaction commits, so the caller may
// reuse it after mutate returns.
func (t *txn) putMemory(sp *space, m *Memory, norm []float32, derived bool) (created bool, err error) {
	m.Space = sp.info.Name
	// The logged copy carries the sequence in the change header (DecodeChange
	// copies it into Memory.Seq); the record carries it in its fields. A
	// vector a deterministic embedder derived from the content is not logged
	// (replay recomputes it): the vector is most of a change's bytes, and
	// every byte of the WAL is paid for in fsync time.
	logged := m
	omit := derived && deterministic(sp.embedder)
	if omit {
		c := *m
		c.Embedding = nil
		logged = &c
	}
	m.Seq = t.logChange(Change{Op: OpPutMemory, Space: sp.info.Name, Memory: logged})
	sp.mu.Lock()
	s := sp.nextSlot
	sp.nextSlot++
	next := sp.nextSlot
	old, existed := sp.byID[m.ID]
	sp.mu.Unlock()
	r := &record{Memory: *m, slot: s}
	r.Embedding = nil
	rec := encodeRecord(r)
	if err := t.batch.Set(memberKey(famMemory, sp.info.Name, m.ID), rec, nil); err != nil {
		return false, err
	}
	// Nor is such a vector stored: a memory without a vector entry in a
	// space with a deterministic embedder gets it recomputed from its
	// content when read or loaded (see vectorFor). That keeps a vector of
	// 4 bytes a dimension per memory out of the WAL, the memtable and
	// every compaction.
	// The delete drops a vector an earlier version of the memory (maybe
	// earlier in this very batch) stored.
	// A new id has no vector to drop unless this txn stored one.
	var vec []byte
	vkey := memberKey(famVector, sp.info.Name, m.ID)
	if omit {
		if existed || t.vectors[string(vkey)] {
			if err := t.batch.Delete(vkey, nil); err != nil {
				return false, err
			}
		}
	} else {
		vec = encodeVector(m.Embedding)
		if err := t.batch.Set(vkey, vec, nil); err != nil {
			return false, err
		}
		if t.vectors == nil {
			t.vectors = map[string]bool{}
		}
		t.vectors[string(vkey)] = true
	}
	t.setNextSlot(sp, next)
	e := t.e
	t.after = append(t.after, func() {
		sp.mu.Lock()
		if existed {
			sp.dropSlot(old)
		}
		sp.setSlot(r, len(rec), len(vec))
		if norm == nil {
			sp.unembedded = append(sp.unembedded, s) // a bulk load's: computed later
		} else {
			// Only now, committed, does the vector take slab space.
			kept := e.vecs.copyOf(norm)
			sp.pending[s] = kept
			sp.queue = append(sp.queue, queued{s, kept})
		}
		sp.mu.Unlock()
		e.cache.offer(sp.num, r, rec)
	})
	return !existed, nil
}

// putAssociation writes a directed edge and its reverse index entry.
func (t *txn) putAssociation(sp *space, a Association) {
	fwd := memberKey(famAssoc, sp.info.Name, a.From, a.To)
	// Deleting a memory deletes its edges, so an edge with an endpoint
	// this txn creates (not yet in byID: the commit lock orders txns) is
	// not stored: only this txn's own edges need checking. A bulk load
	// links mostly new memories, and the lookup reads sstable blocks.
	sp.mu.RLock()
	_, fromStored := sp.byID[a.From]
	_, toStored := sp.byID[a.To]
	sp.mu.RUnlock()
	isNew := true
	if fromStored && toStored {
		_, closer, err := t.e.db.Get(fwd)
		isNew = errors.Is(err, pebble.ErrNotFound)
		if err == nil {
			closer.Close()
		}
	}
	if t.edges == nil {
		t.edges = map[string]bool{}
	}
	if t.edges[string(fwd)] {
		isNew = false
	}
	t.edges[string(fwd)] = true
	_ = t.batch.Set(fwd, encodeAssoc(a.Weight, a.Kind, t.now), nil)
	_ = t.batch.Set(memberKey(famReverse, sp.info.Name, a.To, a.From), nil, nil)
	t.logChange(Change{Op: OpPutAssociation, Space: sp.info.Name, Association: &a})
	if isNew {
		t.after = append(t.after, func() {
			sp.mu.Lock()
			sp.assocs++
			sp.mu.Unlock()
		})
	}
}

func (e *Engine) validateAssociation(a *Association) error {
	if a.Kind == "" {
		a.Kind = "related"
	}
	if err := validateID(a.From, e.opts.Limits.MaxIDBytes); err != nil {
		return err
	}
	if err := validateID(a.To, e.opts.Limits.MaxIDBytes); err != nil {
		return err
	}
	if a.From == a.To {
		return Errorf(KindInvalid, "INVALID_ASSOCIATION", "an association links two different memories; from and to are both %q", a.From)
	}
	if math.IsNaN(a.Weight) || a.Weight <= 0 || a.Weight > 1 {
		return Errorf(KindInvalid, "INVALID_WEIGHT", "weight %v is outside (0, 1]", a.Weight)
	}
	if len(a.Kind) > maxKindBytes {
		return Errorf(KindInvalid, "INVALID_ASSOCIATION", "kind is %d bytes; the limit is %d", len(a.Kind), maxKindBytes)
	}
	return nil
}

// Associate links two existing memories of a space.
func (e *Engine) Associate(ctx context.Context, spaceName string, a Association) (uint64, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	if err := e.validateAssociation(&a); err != nil {
		return 0, err
	}
	sp, err := e.spaceFor(ctx, spaceName, false)
	if err != nil {
		return 0, err
	}
	return e.commit(commitAcked, func(t *txn) error {
		for _, id := range []string{a.From, a.To} {
			if !sp.has(id) {
				return notFound(sp.info.Name, id)
			}
		}
		t.putAssociation(sp, a)
		return nil
	})
}

func notFound(space, id string) *Error {
	return Errorf(KindNotFound, "MEMORY_NOT_FOUND", "memory %q not found in space %q", id, space).WithDetails("id", id, "space", space)
}

// Forget deletes a memory, its vector and every association touching it.
func (e *Engine) Forget(ctx context.Context, spaceName, id string) (uint64, error) {
	if err := e.checkOpen(); err != nil {
		return 0, err
	}
	if err := validateID(id, e.opts.Limits.MaxIDBytes); err != nil {
		return 0, err
	}
	sp, err := e.spaceFor(ctx, spaceName, false)
	if err != nil {
		if KindOf(err) == KindNotFound {
			return 0, notFound(spaceName, id)
		}
		return 0, err
	}
	return e.commit(commitAcked, func(t *txn) error { return t.deleteMemory(sp, id) })
}

func (t *txn) deleteMemory(sp *space, id string) error {
	sp.mu.RLock()
	s, ok := sp.byID[id]
	sp.mu.RUnlock()
	if !ok {
		return notFound(sp.info.Name, id)
	}
	name := sp.info.Name
	_ = t.batch.Delete(memberKey(famMemory, name, id), nil)
	_ = t.batch.Delete(memberKey(famVector, name, id), nil)
	removed := 0
	// Outgoing edges and their reverse entries, then incoming ones.
	for _, dir := range []byte{famAssoc, famReverse} {
		prefix := assocPrefix(dir, name, id)
		it, err := t.e.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
		if err != nil {
			return internalf(err, "scan associations")
		}
		for ok := it.First(); ok; ok = it.Next() {
			_, other := splitMember(it.Key(), len(name))
			_ = t.batch.Delete(append([]byte(nil), it.Key()...), nil)
			if dir == famAssoc {
				_ = t.batch.Delete(memberKey(famReverse, name, other, id), nil)
				removed++
			} else {
				_ = t.batch.Delete(memberKey(famAssoc, name, other, id), nil)
				removed++
			}
		}
		if err := it.Close(); err != nil {
			return internalf(err, "scan associations")
		}
	}
	t.logChange(Change{Op: OpDeleteMemory, Space: name, ID: id})
	t.after = append(t.after, func() {
		sp.mu.Lock()
		sp.dropSlot(s)
		sp.assocs -= int64(removed)
		sp.mu.Unlock()
	})
	return nil
}

// Batch writes many memories and associations atomically, with an optional
// importer cursor in the same batch. Associations may refer to memories of
// the same batch.
func (e *Engine) Batch(ctx context.Context, spaceName string, b BatchInput) (BatchResult, error) {
	if err := e.checkOpen(); err != nil {
		return BatchResult{}, err
	}
	if n := len(b.Memories) + len(b.Associations); n > e.opts.Limits.MaxBatch {
		return BatchResult{}, Errorf(KindTooLarge, "BATCH_TOO_LARGE", "batch has %d memories and associations; the limit is %d", n, e.opts.Limits.MaxBatch).WithDetails("limit", e.opts.Limits.MaxBatch)
	} else if n == 0 && b.Cursor == nil {
		return BatchResult{}, Errorf(KindInvalid, "EMPTY_BATCH", "batch has no memories, associations or cursor")
	}
	if b.Cursor != nil {
		if b.Cursor.Source == "" || len(b.Cursor.Source) > 256 || len(b.Cursor.Value) > 4096 {
			return BatchResult{}, Errorf(KindInvalid, "INVALID_CURSOR", "cursor source must be 1-256 bytes and value at most 4096 bytes")
		}
	}
	now := e.now().UTC()
	sp, err := e.spaceForWrite(ctx, spaceName, func(sp *space) error {
		for i := range b.Memories {
			if _, err := e.prepare(sp, &b.Memories[i], now); err != nil {
				return prefixed(err, "memories[%d]: ", i)
			}
		}
		return nil
	})
	if err != nil {
		return BatchResult{}, err
	}
	ps := make([]*prepared, len(b.Memories))
	inBatch := make(map[string]bool, len(b.Memories))
	for i := range b.Memories {
		p, err := e.prepare(sp, &b.Memories[i], now)
		if err != nil {
			return BatchResult{}, prefixed(err, "memories[%d]: ", i)
		}
		if inBatch[p.m.ID] {
			return BatchResult{}, Errorf(KindInvalid, "DUPLICATE_ID", "memories[%d]: id %q appears twice in the batch", i, p.m.ID)
		}
		inBatch[p.m.ID] = true
		ps[i] = p
	}
	for i := range b.Associations {
		if err := e.validateAssociation(&b.Associations[i]); err != nil {
			return BatchResult{}, prefixed(err, "associations[%d]: ", i)
		}
	}
	defer func() {
		for _, p := range ps {
			p.release()
		}
	}()
	admitted, err := e.admit(ctx, sp, len(ps))
	if err != nil {
		return BatchResult{}, err
	}
	defer admitted()
	embed := ps
	if e.opts.Index.Defer && deterministic(sp.embedder) {
		// A bulk load: a vector the embedder derives from the content is
		// neither logged nor stored, and is computed when the index is
		// built or a recall needs it (embedDeferred), not here.
		embed = nil
		for _, p := range ps {
			if p.m.Embedding == nil {
				p.derived = true
			} else {
				embed = append(embed, p)
			}
		}
	}
	if err := e.embedAll(ctx, sp, embed); err != nil {
		return BatchResult{}, err
	}
	if err := ctxErr(ctx); err != nil {
		return BatchResult{}, err
	}
	res := BatchResult{IDs: make([]string, len(ps)), Associations: len(b.Associations)}
	seq, err := e.commit(commitAcked, func(t *txn) error {
		t.changes = make([]Change, 0, len(ps)+len(b.Associations)+1) // one change each, and the cursor
		t.reserve(batchBytes(sp.info.Name, ps, b.Associations))
		for i, p := range ps {
			p.m.StoredAt, p.m.LastAccess = t.now, t.now
			if _, err := t.putMemory(sp, &p.m, p.norm, p.derived); err != nil {
				return err
			}
			res.IDs[i] = p.m.ID
		}
		for i, a := range b.Associations {
			for _, id := range []string{a.From, a.To} {
				if !inBatch[id] && !sp.has(id) {
					return prefixed(notFound(sp.info.Name, id), "associations[%d]: ", i)
				}
			}
			t.putAssociation(sp, a)
		}
		if b.Cursor != nil {
			t.setCursor(*b.Cursor)
		}
		return nil
	})
	if err != nil {
		return BatchResult{}, err
	}
	res.Seq = seq
	e.kickIndexer()
	return res, nil
}

// batchBytes estimates what a batch writes to Pebble: each memory's
// record and change-log entry (its vector when one is stored), and each
// association's edge, reverse entry and change-log entry.
func batchBytes(space string, ps []*prepared, as []Association) int {
	n := 0
	for _, p := range ps {
		m := &p.m
		k := len(m.ID) + len(m.Content) + len(m.Type)
		for _, t := range m.Tags {
			k += len(t) + 2
		}
		for key, v := range m.Metadata {
			k += len(key) + len(v) + 4
		}
		n += 2*k + 3*len(space) + 160
		if !p.derived {
			n += 4*len(m.Embedding) + len(m.ID) + len(space) + 16
		}
	}
	for i := range as {
		n += 3*(len(as[i].From)+len(as[i].To)+len(space)) + 2*len(as[i].Kind) + 96
	}
	return n
}

func prefixed(err error, format string, args ...any) error {
	var ee *Error
	if errors.As(err, &ee) {
		c := *ee
		c.Message = fmt.Sprintf(format, args...) + c.Message
		return &c
	}
	return err
}

func (t *txn) setCursor(c Cursor) {
	_ = t.batch.Set(spaceKey(famCursor, c.Source), []byte(c.Value), nil)
	t.logChange(Change{Op: OpSetCursor, Cursor: &c})
}

// Cursor returns an importer's stored cursor.
func (e *Engine) Cursor(source string) (string, bool, error) {
	if err := e.checkOpen(); err != nil {
		return "", false, err
	}
	v, closer, err := e.db.Get(spaceKey(famCursor, source))
	if errors.Is(err, pebble.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, internalf(err, "read cursor")
	}
	defer closer.Close()
	return string(v), true, nil
}

// ApplyChanges replays change-log entries (from a backup) in order. Each
// change must carry the next sequence number: a gap or a repeat is refused,
// so a replay can neither skip nor double-apply.
func (e *Engine) ApplyChanges(ctx context.Context, changes []Change) error {
	if err := e.checkOpen(); err != nil {
		return err
	}
	for i := range changes {
		if err := ctxErr(ctx); err != nil {
			return err
		}
		c := changes[i]
		if _, err := e.commit(commitReplay, func(t *txn) error {
			if c.Seq != e.seq+1 {
				return Errorf(KindConflict, "SEQUENCE_GAP", "change %d does not follow the engine's last sequence %d", c.Seq, e.seq)
			}
			t.now, t.replaySeq = c.Time, c.Seq
			return t.apply(&c)
		}); err != nil {
			return err
		}
	}
	if err := e.db.LogData(nil, pebble.Sync); err != nil {
		return internalf(err, "sync after replay")
	}
	e.commitMu.Lock()
	e.markDurable(e.seq)
	e.commitMu.Unlock()
	e.kickIndexer()
	return nil
}

// apply performs one logged change during replay.
func (t *txn) apply(c *Change) error {
	e := t.e
	get := func() (*space, error) {
		sp := e.lookupSpace(c.Space)
		if sp == nil {
			return nil, Errorf(KindConflict, "REPLAY_UNKNOWN_SPACE", "change %d refers to space %q that the replay has not created", c.Seq, c.Space)
		}
		return sp, nil
	}
	switch c.Op {
	case OpCreateSpace:
		if sp := e.lookupSpace(c.SpaceInfo.Name); sp != nil {
			t.logChange(*c) // already present (snapshot overlap is refused earlier); keep the sequence
			return nil
		}
		info := *c.SpaceInfo
		var created bool
		want := info.Fingerprint
		if err := t.createSpace(&info, &created); err != nil {
			return err
		}
		if info.Fingerprint != want {
			return Errorf(KindConflict, "EMBEDDER_MISMATCH", "space %q was created with embedder %s but this configuration provides %s", info.Name, want, info.Fingerprint)
		}
		return nil
	case OpPutMemory:
		sp, err := get()
		if err != nil {
			return err
		}
		m := *c.Memory
		derived := m.Embedding == nil
		vec := m.Embedding
		// The normalised vector lives in a scratch buffer until the
		// committed transaction copies it into a slab (as for a remember),
		// so a replay makes no garbage of a vector per memory.
		scratch := getScratchVec(sp.info.Dimension)
		norm := *scratch
		if derived {
			// Logged without its vector: the space's deterministic embedder
			// (same fingerprint, checked when the space was created) gives it
			// back. Such a vector is neither logged nor stored again, so the
			// memory keeps no embedding of its own.
			if !deterministic(sp.embedder) {
				return Errorf(KindConflict, "REPLAY_MISSING_VECTOR", "change %d has no vector and space %q's embedder %s cannot recompute it", c.Seq, sp.info.Name, sp.info.Fingerprint)
			}
			if into, ok := sp.embedder.(embedsInto); ok {
				into.EmbedInto(norm, m.Content)
				vec = norm
			} else {
				vecs, err := sp.embedder.Embed(context.Background(), []string{m.Content})
				if err != nil || len(vecs) != 1 {
					return &Error{Kind: KindInternal, Code: "EMBEDDER_FAILED", Message: "recomputing a replayed vector failed", Err: err}
				}
				vec = vecs[0]
			}
		}
		if err := validateVector(vec, sp.info.Dimension, "replayed embedding"); err != nil {
			return err
		}
		copy(norm, vec)
		vector.NormalizeInPlace(norm)
		m.Tier = TierWarm
		if _, err := t.putMemory(sp, &m, norm, derived); err != nil {
			return err
		}
		t.after = append(t.after, func() { scratchVecs.Put(scratch) }) // after putMemory's copy
		return nil
	case OpDeleteMemory:
		sp, err := get()
		if err != nil {
			return err
		}
		return t.deleteMemory(sp, c.ID)
	case OpPutAssociation:
		sp, err := get()
		if err != nil {
			return err
		}
		t.putAssociation(sp, *c.Association)
		return nil
	case OpSetCursor:
		t.setCursor(*c.Cursor)
		return nil
	case OpSetSystem:
		t.setSystem(*c.System)
		return nil
	case OpTouch:
		sp, err := get()
		if err != nil {
			return err
		}
		return t.applyTouches(sp, c.Touches, c)
	}
	return Errorf(KindInvalid, "UNKNOWN_CHANGE", "change %d has unknown op %d", c.Seq, c.Op)
}
