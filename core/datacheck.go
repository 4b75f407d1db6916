package core

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/engram-ops/engram-ops/core/vector"
)

// CheckDataDir is the offline integrity check of a stopped data directory
// (`engram-ops validate data`). It takes the directory's lock first, so a
// directory a running server holds is refused (DATA_DIR_IN_USE, naming the
// lock file), then reads every key of the store and compares what refers to
// what:
//
//   - every memory record and vector decodes, and belongs to a space that exists;
//   - the persisted ANN graph of each space reads, has the space's dimension,
//     and indexes only slots the space has numbered; warm memories the graph
//     lacks are the pending backlog the engine indexes again at open, not damage;
//   - every association joins two memories of its space, and the forward and
//     reverse entries agree;
//   - the change log has no gap between its first and last sequence and every
//     entry decodes under its own sequence;
//   - each space's stored next-slot counter is above every slot in use, and no
//     two memories share a slot.
//
// With repair set it also applies the repairs that lose nothing an
// acknowledged write still needs: dropping dangling associations and their
// reverse entries, adding a missing reverse entry, dropping vectors whose
// memory is gone, raising a next-slot counter, and removing an index graph
// that is unreadable or stale (the engine rebuilds it from the vectors at
// open). A damaged record or a gap in the change log has no safe repair: the
// finding says to restore from a backup.
func CheckDataDir(dir string, repair bool) (*DataReport, error) {
	dbDir := filepath.Join(dir, "db")
	if st, err := os.Stat(dbDir); err != nil || !st.IsDir() {
		return nil, Errorf(KindInvalid, "NOT_A_DATA_DIR", "%s is not an engram-ops data directory (it has no db/ directory): check the path (serve's --data-dir)", dir)
	}
	lock, err := lockDataDir(dbDir)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	db, err := pebble.Open(dbDir, &pebble.Options{Lock: lock, ReadOnly: !repair, Logger: &quietLogger{l: withDefaults(Options{}).Logger}})
	if err != nil {
		return nil, openError(dbDir, err)
	}
	defer db.Close()
	c := &dataChecker{dir: dir, db: db, spaces: map[string]*spaceCheck{}, rep: &DataReport{Dir: dir}}
	if err := c.run(); err != nil {
		return nil, err
	}
	if repair {
		if err := c.repair(); err != nil {
			return c.rep, err
		}
	}
	sort.SliceStable(c.rep.Findings, func(i, j int) bool {
		a, b := c.rep.Findings[i], c.rep.Findings[j]
		if a.Space != b.Space {
			return a.Space < b.Space
		}
		return a.Check < b.Check
	})
	for _, sc := range c.order() {
		c.rep.Spaces = append(c.rep.Spaces, sc.summary)
	}
	return c.rep, nil
}

// DataReport is what CheckDataDir found.
type DataReport struct {
	Dir        string       `json:"data_dir"`
	Format     string       `json:"format"`
	LogFirst   uint64       `json:"change_log_first"`
	LogLast    uint64       `json:"change_log_last"`
	LogEntries uint64       `json:"change_log_entries"`
	Spaces     []SpaceCheck `json:"spaces"`
	Findings   []Finding    `json:"findings"`
}

// Damaged counts the findings that are damage not (yet) repaired.
func (r *DataReport) Damaged() int {
	n := 0
	for _, f := range r.Findings {
		if f.Severity == SeverityDamage && !f.Repaired {
			n++
		}
	}
	return n
}

// SpaceCheck is one space's counts as the check read them.
type SpaceCheck struct {
	Name         string `json:"name"`
	Dimension    int    `json:"dimension"`
	Memories     int64  `json:"memories"`
	Cold         int64  `json:"cold"`
	Vectors      int64  `json:"vectors"`
	Associations int64  `json:"associations"`
	NextSlot     uint32 `json:"next_slot"`
	// Indexed counts the live nodes of the persisted graph that are warm
	// memories; IndexPending the warm memories it lacks, which the engine
	// indexes at open; IndexStale its live nodes of memories forgotten or
	// moved to cold since it was saved (the index applies removals behind
	// the write path too), which the engine treats as deleted at open.
	Indexed      int64 `json:"indexed"`
	IndexPending int64 `json:"index_pending"`
	IndexStale   int64 `json:"index_stale"`
	Graph        bool  `json:"graph_file"`
}

// Finding severities.
const (
	// SeverityDamage is data the engine cannot use as it is.
	SeverityDamage = "damage"
	// SeverityNotice is a state the engine tolerates and heals at open.
	SeverityNotice = "notice"
)

// Finding is one problem: where (space and key), what is wrong, and the
// repair when a safe one exists ("" when none: restore from a backup).
type Finding struct {
	Severity string `json:"severity"`
	Check    string `json:"check"` // records, vectors, index, associations, change_log, counters, spaces, format
	Space    string `json:"space,omitempty"`
	Key      string `json:"key"`
	Problem  string `json:"problem"`
	Repair   string `json:"repair"`
	Repaired bool   `json:"repaired"`

	fix func(b *pebble.Batch) error
	// removeFile is a file the repair deletes (after the batch commits).
	removeFile string
}

type spaceCheck struct {
	summary SpaceCheck
	known   bool                // an 'S' record exists
	ids     map[string]uint32   // live memory id -> slot
	tiers   map[string]Tier     // id -> stored tier
	slots   map[uint32]string   // slot -> id
	vectors map[string]struct{} // ids with a float32 vector
}

type dataChecker struct {
	dir    string
	db     *pebble.DB
	spaces map[string]*spaceCheck
	rep    *DataReport
}

func (c *dataChecker) space(name string) *spaceCheck {
	sc := c.spaces[name]
	if sc == nil {
		sc = &spaceCheck{summary: SpaceCheck{Name: name}, ids: map[string]uint32{}, tiers: map[string]Tier{},
			slots: map[uint32]string{}, vectors: map[string]struct{}{}}
		c.spaces[name] = sc
	}
	return sc
}

func (c *dataChecker) order() []*spaceCheck {
	out := make([]*spaceCheck, 0, len(c.spaces))
	for _, sc := range c.spaces {
		if sc.known {
			out = append(out, sc)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].summary.Name < out[j].summary.Name })
	return out
}

func (c *dataChecker) find(f Finding) {
	c.rep.Findings = append(c.rep.Findings, f)
}

// printableKey renders a key for a finding: the family letter, then the
// components separated by '/', with the change log's sequence in decimal.
func printableKey(k []byte) string {
	if len(k) == 9 && k[0] == famLog {
		return "L/" + strconv.FormatUint(binary.BigEndian.Uint64(k[1:]), 10)
	}
	return strconv.Quote(string(bytes.ReplaceAll(k, []byte{0}, []byte{'/'})))
}

// scan calls f for every key of family fam.
func (c *dataChecker) scan(fam byte, f func(k, v []byte) error) error {
	it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: []byte{fam}, UpperBound: []byte{fam + 1}})
	if err != nil {
		return internalf(err, "read the store")
	}
	for ok := it.First(); ok; ok = it.Next() {
		if err := f(it.Key(), it.Value()); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return internalf(err, "read the store")
	}
	return nil
}

// splitSpaceKey splits fam space 0 a [0 b] into its parts.
func splitSpaceKey(k []byte) (space, a, b string, ok bool) {
	rest := k[1:]
	i := bytes.IndexByte(rest, 0)
	if i < 0 {
		return "", "", "", false
	}
	space, rest = string(rest[:i]), rest[i+1:]
	if j := bytes.IndexByte(rest, 0); j >= 0 {
		return space, string(rest[:j]), string(rest[j+1:]), true
	}
	return space, string(rest), "", true
}

func (c *dataChecker) run() error {
	v, closer, err := c.db.Get([]byte{famFormat})
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		c.find(Finding{Severity: SeverityNotice, Check: "format", Key: printableKey([]byte{famFormat}),
			Problem: "no format marker: the store was never opened by a server (empty), or the marker was lost"})
	case err != nil:
		return internalf(err, "read the format marker")
	default:
		c.rep.Format = string(v)
		closer.Close()
		if c.rep.Format != formatMarker {
			return Errorf(KindInvalid, "UNSUPPORTED_FORMAT", "data directory format %q is not supported by this binary (supports %q)", c.rep.Format, formatMarker)
		}
	}
	steps := []func() error{c.checkSpaces, c.checkRecords, c.checkVectors, c.checkAssociations, c.checkChangeLog}
	for _, step := range steps {
		if err := step(); err != nil {
			return err
		}
	}
	for _, sc := range c.order() {
		c.checkCounters(sc)
		if err := c.checkIndex(sc); err != nil {
			return err
		}
	}
	for name, sc := range c.spaces {
		if !sc.known {
			c.find(Finding{Severity: SeverityDamage, Check: "spaces", Space: name, Key: printableKey(spaceKey(famSpace, name)),
				Problem: fmt.Sprintf("%d memories, %d vectors and %d associations belong to space %q, which has no space record", len(sc.ids), sc.summary.Vectors, sc.summary.Associations, name)})
		}
	}
	return nil
}

func (c *dataChecker) checkSpaces() error {
	if err := c.scan(famSpace, func(k, v []byte) error {
		name := string(k[1:])
		var info SpaceInfo
		if err := json.Unmarshal(v, &info); err != nil || info.Name != name || info.Dimension < 1 {
			c.find(Finding{Severity: SeverityDamage, Check: "spaces", Space: name, Key: printableKey(k),
				Problem: fmt.Sprintf("the space record does not decode to a space named %q with a dimension", name)})
			return nil
		}
		sc := c.space(name)
		sc.known = true
		sc.summary.Dimension = info.Dimension
		return nil
	}); err != nil {
		return err
	}
	return c.scan(famNextSlot, func(k, v []byte) error {
		sc := c.space(string(k[1:]))
		if len(v) != 4 {
			c.find(Finding{Severity: SeverityDamage, Check: "counters", Space: sc.summary.Name, Key: printableKey(k),
				Problem: fmt.Sprintf("the next-slot counter is %d bytes, not 4", len(v))})
			return nil
		}
		sc.summary.NextSlot = binary.BigEndian.Uint32(v)
		return nil
	})
}

func (c *dataChecker) checkRecords() error {
	var r record
	return c.scan(famMemory, func(k, v []byte) error {
		name, id, _, ok := splitSpaceKey(k)
		if !ok {
			c.find(Finding{Severity: SeverityDamage, Check: "records", Key: printableKey(k), Problem: "malformed memory key (no space separator)"})
			return nil
		}
		sc := c.space(name)
		if err := decodeRecordInto(v, name, id, &r, false); err != nil {
			c.find(Finding{Severity: SeverityDamage, Check: "records", Space: name, Key: printableKey(k),
				Problem: fmt.Sprintf("memory %q does not decode (%v, %d bytes)", id, err, len(v)),
				Repair:  "none safe: " + RestoreAdvice})
			return nil
		}
		if other, dup := sc.slots[r.slot]; dup {
			c.find(Finding{Severity: SeverityDamage, Check: "counters", Space: name, Key: printableKey(k),
				Problem: fmt.Sprintf("memories %q and %q share slot %d", other, id, r.slot), Repair: "none safe: " + RestoreAdvice})
		}
		sc.slots[r.slot] = id
		sc.ids[id] = r.slot
		sc.tiers[id] = r.Tier
		sc.summary.Memories++
		if r.Tier == TierCold {
			sc.summary.Cold++
		}
		return nil
	})
}

func (c *dataChecker) checkVectors() error {
	return c.scan(famVector, func(k, v []byte) error {
		name, id, _, ok := splitSpaceKey(k)
		if !ok {
			c.find(Finding{Severity: SeverityDamage, Check: "vectors", Key: printableKey(k), Problem: "malformed vector key (no space separator)"})
			return nil
		}
		sc := c.space(name)
		sc.summary.Vectors++
		key := append([]byte(nil), k...)
		if _, live := sc.ids[id]; !live {
			c.find(Finding{Severity: SeverityDamage, Check: "vectors", Space: name, Key: printableKey(k),
				Problem: fmt.Sprintf("vector of memory %q, which has no record", id),
				Repair:  "drop the vector (the engine never reads it)",
				fix:     func(b *pebble.Batch) error { return b.Delete(key, nil) }})
			return nil
		}
		sv, err := decodeVector(v)
		if err != nil {
			c.find(Finding{Severity: SeverityDamage, Check: "vectors", Space: name, Key: printableKey(k),
				Problem: fmt.Sprintf("vector of memory %q does not decode (%d bytes)", id, len(v)), Repair: "none safe: " + RestoreAdvice})
			return nil
		}
		if sc.known && sv.dim() != sc.summary.Dimension {
			c.find(Finding{Severity: SeverityDamage, Check: "vectors", Space: name, Key: printableKey(k),
				Problem: fmt.Sprintf("vector of memory %q has %d dimensions; the space has %d", id, sv.dim(), sc.summary.Dimension),
				Repair:  "none safe: " + RestoreAdvice})
			return nil
		}
		if sv.f32 != nil {
			sc.vectors[id] = struct{}{}
		}
		return nil
	})
}

func (c *dataChecker) checkAssociations() error {
	if err := c.scan(famAssoc, func(k, v []byte) error {
		name, from, to, ok := splitSpaceKey(k)
		if !ok || to == "" {
			c.find(Finding{Severity: SeverityDamage, Check: "associations", Key: printableKey(k), Problem: "malformed association key"})
			return nil
		}
		sc := c.space(name)
		sc.summary.Associations++
		fwd := append([]byte(nil), k...)
		rev := memberKey(famReverse, name, to, from)
		var missing []string
		for _, end := range []string{from, to} {
			if _, live := sc.ids[end]; !live {
				missing = append(missing, strconv.Quote(end))
			}
		}
		if len(missing) > 0 {
			c.find(Finding{Severity: SeverityDamage, Check: "associations", Space: name, Key: printableKey(k),
				Problem: fmt.Sprintf("association %s -> %s is dangling: no memory %s", from, to, joinAnd(missing)),
				Repair:  "drop the association and its reverse entry (forgetting the memory would have dropped them)",
				fix: func(b *pebble.Batch) error {
					return errors.Join(b.Delete(fwd, nil), b.Delete(rev, nil))
				}})
			return nil
		}
		if _, _, err := decodeAssoc(v); err != nil {
			c.find(Finding{Severity: SeverityDamage, Check: "associations", Space: name, Key: printableKey(k),
				Problem: fmt.Sprintf("association %s -> %s does not decode (%d bytes)", from, to, len(v)), Repair: "none safe: " + RestoreAdvice})
		}
		if _, closer, err := c.db.Get(rev); err == nil {
			closer.Close()
		} else if errors.Is(err, pebble.ErrNotFound) {
			c.find(Finding{Severity: SeverityDamage, Check: "associations", Space: name, Key: printableKey(rev),
				Problem: fmt.Sprintf("association %s -> %s has no reverse entry, so forgetting %q would leave it dangling", from, to, to),
				Repair:  "add the reverse entry",
				fix:     func(b *pebble.Batch) error { return b.Set(rev, nil, nil) }})
		} else {
			return internalf(err, "read the store")
		}
		return nil
	}); err != nil {
		return err
	}
	return c.scan(famReverse, func(k, _ []byte) error {
		name, to, from, ok := splitSpaceKey(k)
		if !ok || from == "" {
			c.find(Finding{Severity: SeverityDamage, Check: "associations", Key: printableKey(k), Problem: "malformed reverse association key"})
			return nil
		}
		fwd := memberKey(famAssoc, name, from, to)
		if _, closer, err := c.db.Get(fwd); err == nil {
			closer.Close()
			return nil
		} else if !errors.Is(err, pebble.ErrNotFound) {
			return internalf(err, "read the store")
		}
		rev := append([]byte(nil), k...)
		c.find(Finding{Severity: SeverityDamage, Check: "associations", Space: name, Key: printableKey(k),
			Problem: fmt.Sprintf("reverse entry of association %s -> %s, which does not exist", from, to),
			Repair:  "drop the reverse entry",
			fix:     func(b *pebble.Batch) error { return b.Delete(rev, nil) }})
		return nil
	})
}

func (c *dataChecker) checkChangeLog() error {
	var prev uint64
	return c.scan(famLog, func(k, v []byte) error {
		if len(k) != 9 {
			c.find(Finding{Severity: SeverityDamage, Check: "change_log", Key: printableKey(k), Problem: fmt.Sprintf("change-log key of %d bytes, not 9", len(k))})
			return nil
		}
		seq := binary.BigEndian.Uint64(k[1:])
		if c.rep.LogFirst == 0 {
			c.rep.LogFirst = seq
		} else if seq != prev+1 {
			c.find(Finding{Severity: SeverityDamage, Check: "change_log", Key: printableKey(k),
				Problem: fmt.Sprintf("gap in the change log: sequences %d..%d are missing", prev+1, seq-1),
				Repair:  "none safe: backups and followers cannot ship the missing entries; take a new snapshot (engram-ops backup create) after restoring or accepting the loss"})
		}
		prev = seq
		c.rep.LogLast = seq
		c.rep.LogEntries++
		ch, err := DecodeChange(v)
		switch {
		case err != nil:
			c.find(Finding{Severity: SeverityDamage, Check: "change_log", Space: "", Key: printableKey(k),
				Problem: fmt.Sprintf("change-log entry %d does not decode (%v)", seq, err), Repair: "none safe: " + RestoreAdvice})
		case ch.Seq != seq:
			c.find(Finding{Severity: SeverityDamage, Check: "change_log", Space: ch.Space, Key: printableKey(k),
				Problem: fmt.Sprintf("change-log entry under sequence %d says sequence %d", seq, ch.Seq), Repair: "none safe: " + RestoreAdvice})
		}
		return nil
	})
}

func (c *dataChecker) checkCounters(sc *spaceCheck) {
	var top uint32
	used := false
	for s := range sc.slots {
		if !used || s > top {
			top, used = s, true
		}
	}
	if !used || top < sc.summary.NextSlot {
		return
	}
	name := sc.summary.Name
	next := top + 1
	key := spaceKey(famNextSlot, name)
	c.find(Finding{Severity: SeverityDamage, Check: "counters", Space: name, Key: printableKey(key),
		Problem: fmt.Sprintf("the next-slot counter is %d but slot %d (memory %q) is in use", sc.summary.NextSlot, top, sc.slots[top]),
		Repair:  fmt.Sprintf("raise the counter to %d", next),
		fix: func(b *pebble.Batch) error {
			return b.Set(key, binary.BigEndian.AppendUint32(nil, next), nil)
		}})
}

// checkIndex compares the persisted graph of a space with its records.
func (c *dataChecker) checkIndex(sc *spaceCheck) error {
	name := sc.summary.Name
	path := indexPath(c.dir, name)
	// Warm memories with a stored vector, or none (derived from the
	// content at open): what the index should hold.
	warm := map[uint32]bool{}
	for id, s := range sc.ids {
		if sc.tiers[id] != TierCold {
			warm[s] = true
		}
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		sc.summary.IndexPending = int64(len(warm))
		return nil
	} else if err != nil {
		return internalf(err, "open the index graph of %s", name)
	}
	defer f.Close()
	sc.summary.Graph = true
	removeGraph := "remove the graph file; the engine rebuilds the index from the vectors at open"
	zero := make([]float32, sc.summary.Dimension)
	var nodes []uint32
	idx, err := vector.ReadGraph(f, func(id uint32) ([]float32, bool) {
		nodes = append(nodes, id)
		return zero, true
	})
	if err != nil {
		c.find(Finding{Severity: SeverityDamage, Check: "index", Space: name, Key: path,
			Problem: fmt.Sprintf("the index graph does not read: %v", err), Repair: removeGraph, removeFile: path})
		sc.summary.IndexPending = int64(len(warm))
		return nil
	}
	if idx.Dim() != sc.summary.Dimension {
		c.find(Finding{Severity: SeverityDamage, Check: "index", Space: name, Key: path,
			Problem: fmt.Sprintf("the index graph has %d dimensions; the space has %d", idx.Dim(), sc.summary.Dimension), Repair: removeGraph, removeFile: path})
		sc.summary.IndexPending = int64(len(warm))
		return nil
	}
	var beyond []uint32
	var stale int
	for _, s := range nodes {
		if !idx.Contains(s) {
			continue
		}
		if s >= sc.summary.NextSlot && sc.slots[s] == "" {
			beyond = append(beyond, s)
		} else if !warm[s] {
			stale++
		} else {
			sc.summary.Indexed++
		}
	}
	for s := range warm {
		if !idx.Contains(s) {
			sc.summary.IndexPending++
		}
	}
	if len(beyond) > 0 {
		c.find(Finding{Severity: SeverityDamage, Check: "index", Space: name, Key: path,
			Problem: fmt.Sprintf("the index graph holds %d slot(s) the space never numbered (first: %d, next slot %d): it is not this store's graph", len(beyond), beyond[0], sc.summary.NextSlot),
			Repair:  removeGraph, removeFile: path})
	}
	sc.summary.IndexStale = int64(stale)
	return nil
}

// repair applies every finding's safe repair: the key changes in one
// synced batch, then the file removals.
func (c *dataChecker) repair() error {
	b := c.db.NewBatch()
	defer b.Close()
	var fixed []*Finding
	for i := range c.rep.Findings {
		f := &c.rep.Findings[i]
		if f.fix == nil {
			continue
		}
		if err := f.fix(b); err != nil {
			return internalf(err, "repair %s", f.Key)
		}
		fixed = append(fixed, f)
	}
	if !b.Empty() {
		if err := b.Commit(pebble.Sync); err != nil {
			return internalf(err, "write the repairs")
		}
	}
	for _, f := range fixed {
		f.Repaired = true
	}
	for i := range c.rep.Findings {
		f := &c.rep.Findings[i]
		if f.removeFile == "" {
			continue
		}
		if err := os.Remove(f.removeFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return internalf(err, "remove %s", f.removeFile)
		}
		f.Repaired = true
	}
	return nil
}

// Repairable reports whether the finding has a safe repair.
func (f *Finding) Repairable() bool { return f.fix != nil || f.removeFile != "" }

func joinAnd(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return fmt.Sprintf("%s and %s", items[0], items[1])
}

// lockDataDir takes the storage engine's lock in db without opening it.
func lockDataDir(db string) (*pebble.Lock, error) {
	l, err := pebble.LockDirectory(db, vfs.Default)
	if err != nil {
		if lockHeld(err) {
			return nil, dataDirInUse(db, err)
		}
		return nil, internalf(err, "lock the storage engine in %s", db)
	}
	return l, nil
}
