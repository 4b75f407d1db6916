package server

// Moving a space to another server (engram-ops space move).
//
// The mover copies the space from this server's change log (the only read
// that carries associations and forgets as well as memories with their
// embeddings), then holds writes to the space here: a held space answers
// every write route (and gRPC write) with 503 and Retry-After, while reads are served. A
// hold waits for the writes in flight to finish (writeGate), so the
// sequence it answers bounds every acknowledged write to the space; the
// mover copies what came after, switches the router, purges the copy here
// and releases the hold. A hold is a system record of the engine: it is
// durable before it is answered and outlives a restart (a source that
// restarted mid-move and took writes again would lose them to the purge,
// or, with no router to switch, split the space), and travels to
// followers and into snapshots with the data it guards.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/api/apijson"
)

// holdRetryAfter is the Retry-After a held write is answered with.
const holdRetryAfter = 1

// relaxedSyncWait outlasts one sync of relaxed durability (core syncs
// once a second).
const relaxedSyncWait = 1100 * time.Millisecond

// Limits of one GET PathAdminSpaceChanges answer.
const (
	changesDefaultLimit = 500
	changesMaxLimit     = 5000
	// changesScanFactor bounds the entries of other spaces read per
	// answer, as a multiple of the limit.
	changesScanFactor = 20
)

// spaceHolds are the held spaces.
type spaceHolds struct {
	// gate is read-locked by every write request for its whole run and
	// write-locked to add a hold, so taking a hold waits out the writes
	// in flight.
	gate sync.RWMutex
	mu   sync.Mutex
	held map[string]time.Time
}

// holdStore keeps holds across restarts (core.Engine has it).
type holdStore interface {
	PutSystem(ctx context.Context, key string, value []byte) (uint64, error)
	SystemRecords(prefix string) ([]core.SystemRecord, error)
}

// holdRecordPrefix names the system records of held spaces: the prefix,
// then the space; the value is when the hold was taken.
const holdRecordPrefix = "space-hold/"

// holdStore is the engine's store of holds, nil if it has none (a test's
// fake): holds then live in memory only.
func (s *Server) holdStore() holdStore {
	eng := s.eng
	if fe, ok := eng.(*faultEngine); ok {
		eng = fe.Engine
	}
	hs, _ := eng.(holdStore)
	return hs
}

// loadHolds restores the holds a previous run of the server took.
func (s *Server) loadHolds() error {
	hs := s.holdStore()
	if hs == nil {
		return nil
	}
	recs, err := hs.SystemRecords(holdRecordPrefix)
	if err != nil {
		return fmt.Errorf("read the held spaces: %w", err)
	}
	for _, r := range recs {
		name := strings.TrimPrefix(r.Key, holdRecordPrefix)
		var since time.Time
		if err := since.UnmarshalText(r.Value); err != nil {
			return fmt.Errorf("held space %q: the hold's time %q: %w", name, r.Value, err)
		}
		if s.holds.held == nil {
			s.holds.held = map[string]time.Time{}
		}
		s.holds.held[name] = since
		s.log.Warn("writes to a space are held (space move): release with DELETE "+api.PathAdminSpaceHold+" once the move is done",
			"space", name, "since", since.UTC().Format(time.RFC3339))
	}
	return nil
}

// changeReader is the engine's change log and full scan (core.Engine
// has them).
type changeReader interface {
	ChangesSince(after uint64, limit int) ([]core.Change, error)
	ScanMemories(ctx context.Context, space string, withEmbedding bool, fn func(core.Memory) error) error
}

// writeGate runs a write route's handler inside the hold gate.
func (s *Server) writeGate(pattern string, h func(w http.ResponseWriter, r *http.Request) error) func(w http.ResponseWriter, r *http.Request) error {
	if routeAccess[pattern] != accessWrite {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) error {
		s.holds.gate.RLock()
		defer s.holds.gate.RUnlock()
		return h(w, r)
	}
}

// rpcWrites are the operations of the RPC calls (rpc.go) that write.
var rpcWrites = map[string]bool{opRemember: true, opForget: true, opAssociate: true, opBatch: true}

// checkHold refuses a write to a held space.
func (s *Server) checkHold(r *http.Request, space string) error {
	if routeAccess[r.Pattern] != accessWrite {
		return nil
	}
	return s.heldError(space)
}

// heldError is the answer to a write to space while it is held.
func (s *Server) heldError(space string) error {
	s.holds.mu.Lock()
	since, held := s.holds.held[space]
	s.holds.mu.Unlock()
	if !held {
		return nil
	}
	e := httpErrorf(http.StatusServiceUnavailable, "SPACE_HELD",
		"writes to space %q are held while it moves to another server (held since %s); retry after %ds, through the router",
		echo(space), since.UTC().Format(time.RFC3339), holdRetryAfter).
		with("space", echo(space), "retry_after_seconds", holdRetryAfter)
	e.header = map[string]string{"Retry-After": strconv.Itoa(holdRetryAfter)}
	return e
}

func (s *Server) spaceMoveRoutes() {
	s.handle("GET "+api.PathAdminSpaceHold, s.handleGetHold)
	s.handle("POST "+api.PathAdminSpaceHold, s.handleHold)
	s.handle("DELETE "+api.PathAdminSpaceHold, s.handleRelease)
	s.handle("GET "+api.PathAdminSpaceChanges, s.handleSpaceChanges)
	s.handle("GET "+api.PathAdminSpaceExport, s.handleSpaceExport)
	s.handle("POST "+api.PathAdminSpacePurge, s.handlePurge)
}

// heldSpace validates the path's space name for the hold routes.
func heldSpace(r *http.Request) (string, error) {
	if err := newParams(r).check(); err != nil {
		return "", err
	}
	name := r.PathValue("name")
	if err := core.ValidateSpaceName(name); err != nil {
		return "", err
	}
	setSpace(r, name)
	setTarget(r, name)
	return name, nil
}

func (s *Server) holdAnswer(name string) api.SpaceHold {
	s.holds.mu.Lock()
	since, held := s.holds.held[name]
	s.holds.mu.Unlock()
	out := api.SpaceHold{Space: name, Held: held, Sequence: s.eng.LastSequence(), RetryAfterSeconds: holdRetryAfter}
	if held {
		out.Since = &since
	}
	return out
}

func (s *Server) handleGetHold(w http.ResponseWriter, r *http.Request) error {
	name, err := heldSpace(r)
	if err != nil {
		return err
	}
	s.writeJSON(w, http.StatusOK, s.holdAnswer(name))
	return nil
}

func (s *Server) handleHold(w http.ResponseWriter, r *http.Request) error {
	name, err := heldSpace(r)
	if err != nil {
		return err
	}
	if _, err := s.eng.Space(name); err != nil {
		return err
	}
	s.holds.gate.Lock()
	s.holds.mu.Lock()
	_, held := s.holds.held[name]
	s.holds.mu.Unlock()
	if !held {
		since := time.Now()
		if hs := s.holdStore(); hs != nil {
			v, _ := since.UTC().MarshalText()
			if _, err := hs.PutSystem(r.Context(), holdRecordPrefix+name, v); err != nil {
				s.holds.gate.Unlock()
				return fmt.Errorf("record the hold on space %q: %w", name, err)
			}
		}
		s.holds.mu.Lock()
		if s.holds.held == nil {
			s.holds.held = map[string]time.Time{}
		}
		s.holds.held[name] = since
		s.holds.mu.Unlock()
	}
	s.holds.gate.Unlock()
	if s.cfg.Durability == string(core.DurabilityRelaxed) {
		// Relaxed durability acknowledges writes before the once-a-second
		// sync makes them durable, and the change log is read up to the
		// durable sequence: wait for the next sync to cover them.
		select {
		case <-time.After(relaxedSyncWait):
		case <-r.Context().Done():
			return r.Context().Err()
		}
	}
	s.log.Warn("writes to a space are held (space move)", "space", name)
	s.writeJSON(w, http.StatusOK, s.holdAnswer(name))
	return nil
}

func (s *Server) handleRelease(w http.ResponseWriter, r *http.Request) error {
	name, err := heldSpace(r)
	if err != nil {
		return err
	}
	s.holds.mu.Lock()
	_, was := s.holds.held[name]
	s.holds.mu.Unlock()
	if hs := s.holdStore(); hs != nil && was {
		// The record goes first: a release that fails keeps the hold.
		if _, err := hs.PutSystem(r.Context(), holdRecordPrefix+name, nil); err != nil {
			return fmt.Errorf("remove the hold on space %q: %w", name, err)
		}
	}
	s.holds.mu.Lock()
	delete(s.holds.held, name)
	s.holds.mu.Unlock()
	if was {
		s.log.Info("writes to a space are released", "space", name)
	}
	s.writeJSON(w, http.StatusOK, s.holdAnswer(name))
	return nil
}

func (s *Server) changeLog() (changeReader, error) {
	eng := s.eng
	if fe, ok := eng.(*faultEngine); ok {
		eng = fe.Engine
	}
	if cr, ok := eng.(changeReader); ok {
		return cr, nil
	}
	return nil, httpErrorf(http.StatusNotImplemented, "CHANGE_LOG_UNAVAILABLE", "this server's engine has no change log to read a space from")
}

func (s *Server) handleSpaceChanges(w http.ResponseWriter, r *http.Request) error {
	p := newParams(r, "after", "limit")
	limit := p.int("limit", changesDefaultLimit)
	var after uint64
	if v := p.str("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			p.fail("after", v, "must be a change-log sequence (a non-negative integer)")
		}
		after = n
	}
	if err := p.check(); err != nil {
		return err
	}
	if limit < 1 || limit > changesMaxLimit {
		return httpErrorf(http.StatusBadRequest, "INVALID_PARAMETER", "limit=%d must be 1..%d", limit, changesMaxLimit).with("parameter", "limit")
	}
	name := r.PathValue("name")
	if err := core.ValidateSpaceName(name); err != nil {
		return err
	}
	setSpace(r, name)
	setTarget(r, name)
	cl, err := s.changeLog()
	if err != nil {
		return err
	}
	if _, err := s.eng.Space(name); err != nil {
		return err
	}
	out := api.SpaceChanges{Space: name, After: after, Next: after, Head: s.eng.LastSequence(), Changes: []api.SpaceChange{}}
	budget := limit * changesScanFactor
	for len(out.Changes) < limit && budget > 0 && out.Next < out.Head {
		chs, err := cl.ChangesSince(out.Next, min(budget, changesMaxLimit))
		if err != nil {
			return err
		}
		if len(chs) == 0 {
			break
		}
		for _, c := range chs {
			budget--
			if c.Space == name {
				if sc, ok := spaceChangeOut(c); ok {
					out.Changes = append(out.Changes, sc)
				}
			}
			out.Next = c.Seq
			if len(out.Changes) >= limit || out.Next >= out.Head {
				break
			}
		}
	}
	s.writeJSON(w, http.StatusOK, out)
	return nil
}

// batchMemory is m in the shape a batch writes.
func batchMemory(m *core.Memory) *api.BatchMemory {
	conf, at := m.Confidence, m.ObservedAt
	return &api.BatchMemory{ID: m.ID, Content: m.Content, Embedding: m.Embedding, Confidence: &conf,
		Tags: m.Tags, MemoryType: string(m.Type), Timestamp: &at, Metadata: m.Metadata}
}

// spaceChangeOut is c in the shapes a batch writes; ok is false for
// entries a copy does not carry (access touches, the space's creation).
func spaceChangeOut(c core.Change) (api.SpaceChange, bool) {
	out := api.SpaceChange{Sequence: c.Seq}
	switch {
	case c.Op == core.OpPutMemory && c.Memory != nil:
		out.Op, out.Memory = api.ChangePutMemory, batchMemory(c.Memory)
	case c.Op == core.OpDeleteMemory:
		out.Op, out.ID = api.ChangeDeleteMemory, c.ID
	case c.Op == core.OpPutAssociation && c.Association != nil:
		a := c.Association
		out.Op = api.ChangePutAssociation
		out.Association = &api.BatchAssociation{From: a.From, To: a.To, Weight: a.Weight, Kind: a.Kind}
	default:
		return out, false
	}
	return out, true
}

// handleSpaceExport streams the space's memories as JSON lines, for the
// first copy of a move whose change log no longer reaches back to the
// space's beginning.
func (s *Server) handleSpaceExport(w http.ResponseWriter, r *http.Request) error {
	if err := newParams(r).check(); err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := core.ValidateSpaceName(name); err != nil {
		return err
	}
	setSpace(r, name)
	setTarget(r, name)
	cl, err := s.changeLog()
	if err != nil {
		return err
	}
	st, err := s.eng.Space(name)
	if err != nil {
		return err
	}
	seq := s.eng.LastSequence()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 64<<10)
	var buf bytes.Buffer
	line := func(v any) error {
		buf.Reset()
		if err := apijson.Encode(&buf, v); err != nil {
			return err
		}
		if !bytes.HasSuffix(buf.Bytes(), []byte("\n")) {
			buf.WriteByte('\n')
		}
		_, err := bw.Write(buf.Bytes())
		return err
	}
	if err := line(api.SpaceExportHead{Space: name, Sequence: seq, Memories: st.Total()}); err != nil {
		return nil // the client went away
	}
	n := 0
	err = cl.ScanMemories(r.Context(), name, true, func(m core.Memory) error {
		n++
		return line(batchMemory(&m))
	})
	end := api.SpaceExportEnd{End: err == nil, Exported: n}
	if err != nil {
		end.Error = err.Error()
		s.log.Warn("space export stopped", "space", name, "err", err)
	}
	if line(end) == nil {
		_ = bw.Flush()
	}
	return nil
}

func (s *Server) handlePurge(w http.ResponseWriter, r *http.Request) error {
	name, err := heldSpace(r)
	if err != nil {
		return err
	}
	s.holds.mu.Lock()
	_, held := s.holds.held[name]
	s.holds.mu.Unlock()
	if !held {
		return httpErrorf(http.StatusConflict, "SPACE_NOT_HELD",
			"space %q is not held: purge forgets every memory of a space only after its writes are held (POST %s)", echo(name), api.PathAdminSpaceHold).
			with("space", echo(name))
	}
	out := api.SpacePurge{Space: name}
	for {
		page, err := s.eng.List(r.Context(), name, core.ListOptions{AllTiers: true, Limit: s.cfg.Limits.MaxResults})
		if err != nil {
			return err
		}
		if len(page.Memories) == 0 {
			break
		}
		for _, m := range page.Memories {
			seq, err := s.eng.Forget(r.Context(), name, m.ID)
			var ce *core.Error
			if errors.As(err, &ce) && ce.Kind == core.KindNotFound {
				continue
			}
			if err != nil {
				return err
			}
			out.Forgotten++
			out.Sequence = seq
		}
	}
	s.log.Warn("a held space was purged (space move)", "space", name, "forgotten", out.Forgotten)
	s.writeJSON(w, http.StatusOK, out)
	return nil
}
