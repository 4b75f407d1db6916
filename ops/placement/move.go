package placement

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

// MoveOptions describe one space move.
type MoveOptions struct {
	Space string
	// From and To are clients of the source and destination servers
	// (with admin keys when they use API keys); FromURL names the source
	// in the destination's resume cursor.
	From, To *client.Client
	FromURL  string
	// Router switches the space's map entry to Shard; nil: no switch (the
	// source keeps the hold, so stray writes are refused, not lost).
	Router  *Runtime
	MapPath string // the map file the router's configuration names
	Shard   string // the destination's shard (the map value)
	// PageSize is the change-log entries read and written per batch.
	PageSize int
	DryRun   bool
	// DropOldAssociations moves a space whose change log no longer
	// reaches back to its beginning although its associations older than
	// the log cannot be copied.
	DropOldAssociations bool
	// Progress, when set, is told each step.
	Progress func(format string, args ...any)
}

// MoveReport is what a move did (or, dry, would do).
type MoveReport struct {
	Space   string `json:"space"`
	From    string `json:"from"`
	DryRun  bool   `json:"dry_run"`
	Resumed bool   `json:"resumed"`
	// Mode is how the space is copied: "change_log" (its whole change
	// log) or "export" (its memories, then the change log after them).
	Mode string `json:"mode"`
	// Exported counts memories copied through the export.
	Exported int    `json:"exported_memories"`
	ResumeAt uint64 `json:"resume_after_sequence"`
	// Copied counts change-log entries applied before the hold, Delta
	// those applied while writes were held.
	Copied int `json:"copied_changes"`
	Delta  int `json:"delta_changes"`
	// Memories and Associations are the source's counts before the move.
	Memories     int64 `json:"memories"`
	Associations int64 `json:"associations"`
	// HeldMillis is how long writes to the space were held: from the hold
	// to the router's switch (or the purge without a router).
	HeldMillis float64 `json:"held_ms"`
	SwitchFrom string  `json:"switch_from,omitempty"`
	SwitchTo   string  `json:"switch_to,omitempty"`
	Switched   bool    `json:"switched"`
	Purged     int     `json:"purged"`
	Released   bool    `json:"released"`
}

// moveCursorSource names a move's cursor on the destination.
func moveCursorSource(space string) string { return "engram-ops space move " + space }

// cursorDone marks a finished move in the destination's cursor, so a later
// move of the same space to it starts afresh.
const cursorDone = "done"

// maxCatchUpPasses bounds the copy passes before the hold.
const maxCatchUpPasses = 5

// Move copies a space from one server to another and switches the router
// to it: the change log is copied through the batch endpoint (with a
// cursor, so a rerun resumes), writes are held on the source, the rest is
// copied, the router's map entry is switched (runtime API and map file),
// and the source's copy is purged.
func Move(ctx context.Context, o MoveOptions) (*MoveReport, error) {
	if o.PageSize <= 0 {
		o.PageSize = 500
	}
	say := o.Progress
	if say == nil {
		say = func(string, ...any) {}
	}
	rep := &MoveReport{Space: o.Space, From: o.FromURL, DryRun: o.DryRun, SwitchTo: o.Shard}
	src, dst := o.From.WithSpace(o.Space), o.To.WithSpace(o.Space)
	sp, err := o.From.Space(ctx, o.Space)
	if err != nil {
		return nil, fmt.Errorf("the source's space %s: %w", o.Space, err)
	}
	rep.Memories, rep.Associations = sp.Memories.Total, sp.Associations
	rp, err := resumePoint(ctx, o, dst)
	if err != nil {
		return nil, err
	}
	if !rp.resumed {
		// The change log copies everything, associations included, when
		// it still reaches back to the space's beginning; else the
		// memories are exported and the log copied after the export.
		if _, err := src.SpaceChanges(ctx, o.Space, 0, 1); client.CodeOf(err) == "CHANGE_LOG_TRUNCATED" {
			rp.export = true
		} else if err != nil {
			return nil, fmt.Errorf("read the source's change log of %s: %w", o.Space, err)
		}
	}
	if rp.export && rp.lastID == "" && sp.Associations > 0 && !o.DropOldAssociations {
		return nil, fmt.Errorf("the source's change log no longer reaches back to the beginning of space %s (changelog.retention), and its %d associations can be read only from the log: "+
			"a move would drop those made before the log's oldest entry. Add --drop-old-associations to move anyway", o.Space, sp.Associations)
	}
	rep.Mode = "change_log"
	if rp.export {
		rep.Mode = "export"
	}
	after := rp.seq
	rep.Resumed, rep.ResumeAt = rp.resumed, after
	if o.Router != nil {
		if rep.SwitchFrom, err = o.Router.GetMap(ctx, o.MapPath, o.Space); err != nil {
			return nil, err
		}
	}
	if o.DryRun {
		if rp.export {
			rep.Exported = int(sp.Memories.Total)
			return rep, nil
		}
		n, err := countChanges(ctx, src, o.Space, after, o.PageSize)
		if err != nil {
			return nil, err
		}
		rep.Copied = n
		return rep, nil
	}
	if _, _, err := o.To.CreateSpace(ctx, api.CreateSpaceRequest{ID: o.Space, Dimension: sp.Dimension, Embedder: sp.Embedder}); err != nil {
		return nil, fmt.Errorf("create space %s on the destination: %w", o.Space, err)
	}
	if rp.export {
		n, seq, err := exportSpace(ctx, src, dst, o, rp)
		if err != nil {
			return rep, err
		}
		rep.Exported, after = n, seq
		say("exported %d memories (the change log follows from sequence %d)", n, seq)
	}
	// Copy until a pass finds little left, so the hold copies little.
	for pass := 1; pass <= maxCatchUpPasses; pass++ {
		n, next, err := copyChanges(ctx, src, dst, o, after, 0)
		if err != nil {
			return rep, err
		}
		rep.Copied += n
		say("pass %d: copied %d change-log entries (up to sequence %d)", pass, n, next)
		after = next
		if n < o.PageSize {
			break
		}
	}
	start := time.Now()
	hold, err := src.HoldSpace(ctx, o.Space)
	if err != nil {
		return rep, fmt.Errorf("hold writes to %s on the source: %w", o.Space, err)
	}
	say("writes to %s held on the source at sequence %d", o.Space, hold.Sequence)
	n, _, err := copyChanges(ctx, src, dst, o, after, hold.Sequence)
	if err != nil {
		return rep, fmt.Errorf("copy the changes made during the move (writes stay held on the source; rerun to resume, or release with DELETE %s): %w", api.PathAdminSpaceHold, err)
	}
	rep.Delta = n
	if o.Router != nil {
		if err := o.Router.SetMap(ctx, o.MapPath, o.Space, o.Shard); err != nil {
			return rep, fmt.Errorf("switch the router (writes stay held on the source; rerun to resume): %w", err)
		}
		rep.Switched = true
		rep.HeldMillis = float64(time.Since(start).Microseconds()) / 1000
		say("router switched: %s → shard %s (writes held %.1f ms)", o.Space, o.Shard, rep.HeldMillis)
		if err := UpdateMapFile(o.MapPath, o.Space, o.Shard); err != nil {
			return rep, fmt.Errorf("the router is switched but the map file %s is not rewritten (a reload would switch back; fix and rerun): %w", o.MapPath, err)
		}
	}
	if _, err := dst.Batch(ctx, api.BatchRequest{Memories: []api.BatchMemory{},
		Cursor: &api.Cursor{Source: moveCursorSource(o.Space), Value: cursorDone + " " + o.FromURL}}); err != nil {
		return rep, fmt.Errorf("mark the move done on the destination: %w", err)
	}
	purged, err := src.PurgeSpace(ctx, o.Space)
	if err != nil {
		return rep, fmt.Errorf("the space is on the destination and the move is recorded done, but purging the source's copy failed (writes stay held there): purge it with POST %s, then release the hold with DELETE %s: %w",
			api.PathAdminSpacePurge, api.PathAdminSpaceHold, err)
	}
	rep.Purged = purged.Forgotten
	if o.Router == nil {
		rep.HeldMillis = float64(time.Since(start).Microseconds()) / 1000
		say("no router to switch: writes to %s stay held on the source; point clients at the destination", o.Space)
		return rep, nil
	}
	if _, err := src.ReleaseSpace(ctx, o.Space); err != nil {
		return rep, fmt.Errorf("release the source's hold on %s: %w", o.Space, err)
	}
	rep.Released = true
	return rep, nil
}

// resume is where a move starts: after seq in the change log, or (export)
// by exporting the memories after lastID and then the log after seq.
type resume struct {
	resumed bool
	export  bool
	seq     uint64
	lastID  string
}

// Cursor values on the destination: "log SEQ FROM" (the change log is
// copied up to SEQ), "export SEQ LASTID FROM" (the export is copied up to
// LASTID; the log follows from SEQ), "done FROM".
func logCursor(seq uint64, from string) string { return fmt.Sprintf("log %d %s", seq, from) }
func exportCursor(seq uint64, lastID, from string) string {
	return fmt.Sprintf("export %d %s %s", seq, lastID, from)
}

// resumePoint reads the destination's cursor of an unfinished move from
// the same source; without one, the destination must not hold the space
// already.
func resumePoint(ctx context.Context, o MoveOptions, dst *client.Client) (resume, error) {
	v, ok, err := o.To.Cursor(ctx, moveCursorSource(o.Space))
	if err != nil {
		return resume{}, fmt.Errorf("read the destination's move cursor: %w", err)
	}
	if ok {
		f := strings.Fields(v)
		if len(f) >= 3 && f[len(f)-1] == o.FromURL && f[0] != cursorDone {
			seq, err := strconv.ParseUint(f[1], 10, 64)
			switch {
			case err != nil:
			case f[0] == "log" && len(f) == 3:
				return resume{resumed: true, seq: seq}, nil
			case f[0] == "export" && len(f) == 4:
				return resume{resumed: true, export: true, seq: seq, lastID: f[2]}, nil
			}
			return resume{}, fmt.Errorf("the destination's move cursor %q is not one this version writes", v)
		}
	}
	sp, err := o.To.Space(ctx, o.Space)
	switch {
	case client.IsNotFound(err):
		return resume{}, nil
	case err != nil:
		return resume{}, fmt.Errorf("the destination's space %s: %w", o.Space, err)
	case sp.Memories.Total > 0:
		return resume{}, fmt.Errorf("the destination already holds %d memories in space %s and no unfinished move of it from %s: refusing to mix two copies (forget them there, or move from the server that has them)",
			sp.Memories.Total, o.Space, o.FromURL)
	}
	return resume{}, nil
}

// exportSpace copies the source's memories through its export, in
// batches carrying the cursor (skipping those a cut run copied), and
// returns how many it copied and the sequence the change log follows from.
func exportSpace(ctx context.Context, src, dst *client.Client, o MoveOptions, rp resume) (int, uint64, error) {
	seq := rp.seq
	var batch []api.BatchMemory
	copied := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		last := batch[len(batch)-1].ID
		if _, err := dst.Batch(ctx, api.BatchRequest{Memories: batch, Cursor: &api.Cursor{Source: moveCursorSource(o.Space), Value: exportCursor(seq, last, o.FromURL)}}); err != nil {
			return fmt.Errorf("write a batch of %d exported memories to the destination: %w", len(batch), err)
		}
		copied += len(batch)
		batch = batch[:0]
		return nil
	}
	_, err := src.ExportSpace(ctx, o.Space, func(h api.SpaceExportHead) error {
		if !rp.resumed {
			seq = h.Sequence
		}
		return nil
	}, func(m api.BatchMemory) error {
		if rp.lastID != "" && m.ID <= rp.lastID {
			return nil
		}
		batch = append(batch, m)
		if len(batch) >= o.PageSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return copied, seq, fmt.Errorf("export %s from the source: %w", o.Space, err)
	}
	return copied, seq, nil
}

// countChanges counts the space's change-log entries after a sequence.
func countChanges(ctx context.Context, src *client.Client, space string, after uint64, page int) (int, error) {
	n := 0
	for {
		ch, err := src.SpaceChanges(ctx, space, after, page)
		if err != nil {
			return n, err
		}
		n += len(ch.Changes)
		if ch.Next >= ch.Head || ch.Next == after {
			return n, nil
		}
		after = ch.Next
	}
}

// copyChanges applies the source's change-log entries of the space after
// a sequence to the destination, up to upto (0: the head when each page
// was read), and returns how many it applied and where it stopped. Each
// page ends with a batch carrying the cursor.
func copyChanges(ctx context.Context, src, dst *client.Client, o MoveOptions, after, upto uint64) (int, uint64, error) {
	total := 0
	for {
		ch, err := src.SpaceChanges(ctx, o.Space, after, o.PageSize)
		if err != nil {
			return total, after, fmt.Errorf("read the source's change log of %s after %d: %w", o.Space, after, err)
		}
		if err := applyPage(ctx, dst, ch.Changes, &api.Cursor{Source: moveCursorSource(o.Space), Value: logCursor(ch.Next, o.FromURL)}); err != nil {
			return total, after, err
		}
		total += len(ch.Changes)
		done := ch.Next >= ch.Head || ch.Next == after || (upto > 0 && ch.Next >= upto)
		after = ch.Next
		if done {
			return total, after, nil
		}
	}
}

// applyPage writes one page in order: runs of memories and associations
// as batches (each id once per batch, the last write winning), forgets
// one by one; the last batch carries the cursor.
func applyPage(ctx context.Context, dst *client.Client, changes []api.SpaceChange, cur *api.Cursor) error {
	var mems []api.BatchMemory
	var assocs []api.BatchAssociation
	memAt, assocAt := map[string]int{}, map[[2]string]int{}
	flush := func(c *api.Cursor) error {
		if len(mems) == 0 && len(assocs) == 0 && c == nil {
			return nil
		}
		if mems == nil {
			mems = []api.BatchMemory{}
		}
		if _, err := dst.Batch(ctx, api.BatchRequest{Memories: mems, Associations: assocs, Cursor: c}); err != nil {
			return fmt.Errorf("write a batch of %d memories and %d associations to the destination: %w", len(mems), len(assocs), err)
		}
		mems, assocs = nil, nil
		clear(memAt)
		clear(assocAt)
		return nil
	}
	for _, c := range changes {
		switch c.Op {
		case api.ChangePutMemory:
			if i, ok := memAt[c.Memory.ID]; ok {
				mems[i] = *c.Memory
				continue
			}
			memAt[c.Memory.ID] = len(mems)
			mems = append(mems, *c.Memory)
		case api.ChangePutAssociation:
			k := [2]string{c.Association.From, c.Association.To}
			if i, ok := assocAt[k]; ok {
				assocs[i] = *c.Association
				continue
			}
			assocAt[k] = len(assocs)
			assocs = append(assocs, *c.Association)
		case api.ChangeDeleteMemory:
			if err := flush(nil); err != nil {
				return err
			}
			if _, err := dst.Forget(ctx, c.ID); err != nil && client.StatusOf(err) != http.StatusNotFound {
				return fmt.Errorf("forget %s on the destination: %w", c.ID, err)
			}
		default:
			return fmt.Errorf("the source sent a change-log entry of an unknown kind %q (sequence %d): upgrade engram-ops", c.Op, c.Sequence)
		}
	}
	return flush(cur)
}
