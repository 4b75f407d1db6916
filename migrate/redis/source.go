// Package redis is the Redis source of migrate: the keys matching each
// SCAN MATCH pattern are one object (named by the pattern), read with
// github.com/redis/go-redis/v9.
//
// Keys are listed with SCAN MATCH pattern COUNT n, never KEYS; each SCAN
// page is read in stages (TYPE and PEXPIRETIME, then GET / HGETALL /
// LRANGE / SMEMBERS / ZRANGE WITHSCORES / XRANGE, then EXISTS of the keys
// its values name), pipelined across pages: one round trip carries the
// next SCAN and a stage of each of the pages before it. A key matching
// several patterns belongs to the first. What a key becomes:
//
//	string   a JSON object's members as fields; else one field "value"
//	         (a JSON array decoded, other text as it is)
//	hash     its fields (JSON-looking values decoded)
//	list     "items", in list order
//	set      "members", sorted
//	zset     "members", [{"member", "score"}] in score order
//	stream   "entries", [{"id", "fields"}] in id order
//
// Every memory of a key stores its type as metadata redis_type and, when
// the key has a TTL, its absolute expiry as redis_expires_at (RFC 3339,
// PEXPIRETIME; now + PTTL before Redis 7). Collections of more than
// MaxItems elements and values over MaxValueBytes are rejected records.
//
// References: a string field (a hash field, a JSON object's top-level
// member, a plain string's value) whose value is the name of another key
// that exists and matches one of the patterns is a reference, yielded as
// a record of the relation object "PATTERN->FIELD", so the default mapping
// makes it an association (weight 0.8, kind the object's name) from the
// key's memory to the named key's; `skip = true` on that object leaves it
// out. A reference to a key of an earlier pattern (whose memories are all
// written by then) follows its key's page; after every pattern's keys, the
// source reads again the patterns holding references to keys of their own
// or a later pattern, and yields those. List, set and stream members are
// not references.
//
// The cursor is the phase (keys, then references), the pattern's index and
// the SCAN cursor of a page, with a fingerprint of --db and the pattern
// list (a resume with other patterns is refused). Records of a page carry
// the SCAN cursor the page was read with, its last record the cursor after
// it, so a resume re-reads at most one page; memory ids derive from the
// pattern and the key, so a re-read overwrites what it wrote.
//
// What SCAN guarantees, and so what a migration of a live keyspace sees: a
// key present for the whole scan is returned at least once; a key added or
// deleted during the scan may or may not be; a key can be returned more
// than once (the table was resized between pages). A key returned again
// within dedupWindow keys is yielded once; further apart it is yielded
// again and its memory written again with the same id, so duplicates never
// reach Engram. A value changed during the scan is read as it is when its
// page is read. A resumed run continues the SCAN from the stored cursor:
// keys present before and after are covered, but a key added while the
// migration was stopped may be missed, and a key deleted stays in Engram.
// The reconciliation at the end reads the keyspace again and reports such
// keys as missing or extra; run with --restart --yes to take a fresh pass.
package redis

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/engram-ops/engram-ops/migrate"
)

// Limits of one key.
const (
	// MaxItems bounds the elements of a list, set, sorted set, stream or
	// hash; a larger one is a rejected record.
	MaxItems = 10_000
	// MaxValueBytes bounds the bytes read for one key.
	MaxValueBytes = 16 << 20
	// DefaultCount is SCAN's COUNT hint.
	DefaultCount = 1000
	// maxSchemaFields bounds the field names Objects collects per pattern;
	// past it the schema is unknown (templates are not checked).
	maxSchemaFields = 512
	// dedupWindow is how many recent keys a scan remembers to drop a key
	// SCAN returns twice.
	dedupWindow = 8192
)

// Metadata keys of every memory of a key.
const (
	MetaType    = "redis_type"
	MetaExpires = "redis_expires_at"
)

// Config says which server and keys to read.
type Config struct {
	Addr     string
	DB       int
	Username string
	Password string
	// Patterns are SCAN MATCH patterns, one object each (default "*").
	Patterns []string
	// Count is SCAN's COUNT hint (default DefaultCount).
	Count int64
}

// Source reads a Redis database.
type Source struct {
	cfg        Config
	c          *goredis.Client
	set        string // fingerprint of the database and patterns
	expireTime bool   // PEXPIRETIME is available (Redis 7 and later)
	// refPatterns are the patterns Objects found references in; nil when
	// Objects has not run (every pattern is read for references).
	refPatterns map[int]bool
}

// Connect checks cfg, connects and authenticates. Errors say whether the
// server is unreachable or refused the credentials or database.
func Connect(ctx context.Context, cfg Config) (*Source, error) {
	if cfg.Addr == "" {
		return nil, errors.New("no Redis address (--addr HOST:PORT)")
	}
	if len(cfg.Patterns) == 0 {
		cfg.Patterns = []string{"*"}
	}
	seen := map[string]bool{}
	for _, p := range cfg.Patterns {
		if p == "" {
			return nil, errors.New("an empty --pattern matches no key; give a glob such as 'user:*'")
		}
		if seen[p] {
			return nil, fmt.Errorf("--pattern %q is given twice", p)
		}
		seen[p] = true
	}
	if cfg.Count <= 0 {
		cfg.Count = DefaultCount
	}
	if cfg.DB < 0 {
		return nil, fmt.Errorf("--db %d: a database number is 0 or more", cfg.DB)
	}
	c := goredis.NewClient(&goredis.Options{Addr: cfg.Addr, Username: cfg.Username, Password: cfg.Password, DB: cfg.DB,
		DialTimeout: 5 * time.Second, DialerRetries: 2, ReadTimeout: time.Minute, WriteTimeout: time.Minute, DisableIdentity: true, PoolSize: 4})
	quietOnce.Do(func() { goredis.SetLogger(quiet{}) })
	if err := c.Ping(ctx).Err(); err != nil {
		c.Close()
		return nil, connectError(cfg, err)
	}
	s := &Source{cfg: cfg, c: c, set: setID(cfg)}
	// A missing key answers -2 where PEXPIRETIME exists, an error where not.
	s.expireTime = c.PExpireTime(ctx, "engram-ops:migrate:probe").Err() == nil
	return s, nil
}

// quiet drops the client's log lines: every failure reaches the caller as
// an error, and the client would print dial failures to stderr on its own.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

var quietOnce sync.Once

func connectError(cfg Config, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "WRONGPASS"), strings.Contains(msg, "NOAUTH"), strings.Contains(msg, "AUTH"),
		strings.Contains(msg, "NOPERM"):
		user := cfg.Username
		if user == "" {
			user = "default"
		}
		return fmt.Errorf("the Redis server at %s refused the credentials of user %q (--user, and the password in the variable --password-env names): %w", cfg.Addr, user, err)
	case strings.Contains(msg, "DB index is out of range"):
		return fmt.Errorf("the Redis server at %s has no database %d (--db): %w", cfg.Addr, cfg.DB, err)
	}
	var re goredis.Error
	if errors.As(err, &re) {
		return fmt.Errorf("the Redis server at %s refused the connection: %w", cfg.Addr, err)
	}
	return fmt.Errorf("the Redis server at %s is unreachable: %w (Try: check --addr, and that redis-server listens there)", cfg.Addr, err)
}

func setID(cfg Config) string {
	h := fnv.New64a()
	// "2": the order of records of this version (references to earlier
	// patterns in the key phase), so a cursor of the one before is refused.
	fmt.Fprintf(h, "2;%d", cfg.DB)
	for _, p := range cfg.Patterns {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// Close closes the connections.
func (s *Source) Close() error { return s.c.Close() }

func (s *Source) Kind() string { return "redis" }

// Patterns are the patterns read, in order.
func (s *Source) Patterns() []string { return s.cfg.Patterns }

// RelationName is the relation object of the references in field of the
// keys of pattern.
func RelationName(pattern, field string) string { return pattern + "->" + field }

// Objects reads every pattern's keys once: per pattern the number of keys
// and the union of their field names, and per pattern and field holding
// references a relation object with their count.
func (s *Source) Objects(ctx context.Context) ([]migrate.Object, error) {
	type entAcc struct {
		count  int64
		fields map[string]bool
	}
	ents := make([]entAcc, len(s.cfg.Patterns))
	for i := range ents {
		ents[i].fields = map[string]bool{}
	}
	rels := map[string]int64{}
	refPatterns := map[int]bool{}
	rd := s.newReader(ctx, position{phase: phaseKeys}, true)
	for {
		pg, err := rd.page()
		if err != nil {
			return nil, err
		}
		if pg == nil {
			break
		}
		i := pg.at.pattern
		a := &ents[i]
		for _, kv := range pg.kvs {
			a.count++
			if a.fields == nil {
				continue
			}
			for f := range kv.fields {
				a.fields[f] = true
			}
			if len(a.fields) > maxSchemaFields {
				a.fields = nil
			}
		}
		for _, r := range pg.refs {
			rels[RelationName(s.cfg.Patterns[i], r.field)]++
			if r.to >= i {
				refPatterns[i] = true
			}
		}
	}
	out := make([]migrate.Object, 0, len(ents)+len(rels))
	for i, a := range ents {
		o := migrate.Object{Name: s.cfg.Patterns[i], Kind: migrate.Entity, Count: a.count}
		if a.fields != nil {
			o.Fields = make([]string, 0, len(a.fields))
			for f := range a.fields {
				o.Fields = append(o.Fields, f)
			}
			sort.Strings(o.Fields)
		}
		out = append(out, o)
	}
	names := make([]string, 0, len(rels))
	for n := range rels {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		out = append(out, migrate.Object{Name: n, Kind: migrate.Relation, Count: rels[n], Fields: []string{"field", "from", "to"}})
	}
	s.refPatterns = refPatterns
	return out, nil
}

// owner is the index of the first pattern key matches, checking the
// patterns before i only (SCAN already matched pattern i).
func (s *Source) owner(key string, i int) int {
	for j := 0; j < i; j++ {
		if globMatch(s.cfg.Patterns[j], key) {
			return j
		}
	}
	return i
}

// target is the pattern a referenced key belongs to, or -1.
func (s *Source) target(key string) int {
	for j, p := range s.cfg.Patterns {
		if globMatch(p, key) {
			return j
		}
	}
	return -1
}

// keyValue is one key as read: its fields, or why it cannot be migrated.
type keyValue struct {
	key     string
	typ     string
	fields  map[string]any
	expires int64 // Unix milliseconds; 0 when the key has no TTL
	bad     string
}

// Stages of a SCAN page in the read pipeline, each one round trip.
const (
	stageTypes  = iota // read TYPE and the expiry of its keys
	stageValues        // read their values
	stageExists        // check that the keys its values name exist
	stageDone
)

// maxInFlight bounds the SCAN pages in the read pipeline: one per stage,
// and a read one waiting for the caller.
const maxInFlight = 4

// page is one SCAN page on its way through the read pipeline.
type page struct {
	at    position // where the page was read (its SCAN cursor)
	after position // the position after it
	stage int
	keys  []string
	types []*goredis.StatusCmd
	exps  []*goredis.DurationCmd
	kvs   []keyValue // the keys that exist, in SCAN order
	vals  []goredis.Cmder
	// refs are the candidate references until stageExists, then the
	// references.
	refs   []ref
	exists map[string]*goredis.IntCmd
}

// refsOnly: in the reference phase only strings and hashes are read (what
// can hold references), without expiries.
func (pg *page) refsOnly() bool { return pg.at.phase == phaseRefs }

// reader reads SCAN pages in order from a position on, pipelined across
// pages: each round trip carries the next SCAN, TYPE and the expiry of the
// keys of the page scanned before, the values of the page before that and
// EXISTS of the keys the page before that names, so a page costs one round
// trip and the server always has a pipeline to answer.
type reader struct {
	s   *Source
	ctx context.Context
	// next is the next SCAN to send.
	next position
	// objects: Objects' pass, the key phase only, with every reference.
	objects bool
	pages   []*page
	// dd drops keys SCAN returns twice within one phase.
	dd      dedup
	ddPhase byte
}

func (s *Source) newReader(ctx context.Context, from position, objects bool) *reader {
	r := &reader{s: s, ctx: ctx, next: from, objects: objects}
	r.skip()
	return r
}

// skip moves next past the reference phase of patterns Objects found no
// references to read in.
func (r *reader) skip() {
	n := len(r.s.cfg.Patterns)
	r.next = r.next.normal(n)
	for r.next.phase == phaseRefs && r.next.pattern < n && r.s.refPatterns != nil && !r.s.refPatterns[r.next.pattern] {
		r.next = position{phase: phaseRefs, pattern: r.next.pattern + 1}
	}
}

// scanning reports whether a SCAN page is left to read.
func (r *reader) scanning() bool {
	if r.next.phase == phaseRefs {
		return !r.objects && r.next.pattern < len(r.s.cfg.Patterns)
	}
	return true
}

// page returns the next page, read to the end; nil after the last.
func (r *reader) page() (*page, error) {
	for len(r.pages) == 0 || r.pages[0].stage != stageDone {
		if len(r.pages) == 0 && !r.scanning() {
			return nil, nil
		}
		if err := r.step(); err != nil {
			return nil, err
		}
	}
	pg := r.pages[0]
	r.pages[0] = nil
	r.pages = r.pages[1:]
	return pg, nil
}

// step sends one pipeline: the next stage of every page in flight, and the
// next SCAN.
func (r *reader) step() error {
	s, ctx := r.s, r.ctx
	pipe := s.c.Pipeline()
	for _, pg := range r.pages {
		r.send(pipe, pg)
	}
	var scan *goredis.ScanCmd
	here := r.next
	if r.scanning() && len(r.pages) < maxInFlight {
		scan = pipe.Scan(ctx, here.scan, s.cfg.Patterns[here.pattern], s.cfg.Count)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		// A command's own error (a key that changed type between TYPE
		// and its read) is that command's; anything else fails the read.
		var re goredis.Error
		if !errors.As(err, &re) {
			return s.readError(err)
		}
	}
	now := time.Now()
	for _, pg := range r.pages {
		if err := r.receive(pg, now); err != nil {
			return err
		}
	}
	if scan == nil {
		return nil
	}
	keys, next, err := scan.Result()
	if err != nil {
		return fmt.Errorf("SCAN %d MATCH %q on %s: %w", here.scan, s.cfg.Patterns[here.pattern], s.cfg.Addr, err)
	}
	own := keys[:0]
	for _, k := range keys {
		if s.owner(k, here.pattern) == here.pattern {
			own = append(own, k)
		}
	}
	if here.phase != r.ddPhase {
		r.dd, r.ddPhase = dedup{}, here.phase
	}
	pg := &page{at: here, keys: r.dd.filter(own)}
	pg.after = position{phase: here.phase, pattern: here.pattern, scan: next}
	if next == 0 {
		pg.after = position{phase: here.phase, pattern: here.pattern + 1}.normal(len(s.cfg.Patterns))
	}
	if len(pg.keys) == 0 {
		pg.stage = stageDone
	}
	r.pages = append(r.pages, pg)
	r.next = pg.after
	r.skip()
	return nil
}

// send queues the commands of pg's stage.
func (r *reader) send(pipe goredis.Pipeliner, pg *page) {
	s, ctx := r.s, r.ctx
	switch pg.stage {
	case stageTypes:
		pg.types = make([]*goredis.StatusCmd, len(pg.keys))
		if !pg.refsOnly() {
			pg.exps = make([]*goredis.DurationCmd, len(pg.keys))
		}
		for i, k := range pg.keys {
			pg.types[i] = pipe.Type(ctx, k)
			switch {
			case pg.exps == nil:
			case s.expireTime:
				pg.exps[i] = pipe.PExpireTime(ctx, k)
			default:
				pg.exps[i] = pipe.PTTL(ctx, k)
			}
		}
	case stageValues:
		pg.vals = make([]goredis.Cmder, len(pg.kvs))
		for i := range pg.kvs {
			kv := &pg.kvs[i]
			if kv.bad != "" {
				continue
			}
			switch kv.typ {
			case "string":
				pg.vals[i] = pipe.Get(ctx, kv.key)
			case "hash":
				pg.vals[i] = pipe.HGetAll(ctx, kv.key)
			case "list":
				pg.vals[i] = pipe.LRange(ctx, kv.key, 0, MaxItems)
			case "set":
				pg.vals[i] = pipe.SMembers(ctx, kv.key)
			case "zset":
				pg.vals[i] = pipe.ZRangeWithScores(ctx, kv.key, 0, MaxItems)
			case "stream":
				pg.vals[i] = pipe.XRangeN(ctx, kv.key, "-", "+", MaxItems+1)
			}
		}
	case stageExists:
		pg.exists = map[string]*goredis.IntCmd{}
		for _, c := range pg.refs {
			if pg.exists[c.target] == nil {
				pg.exists[c.target] = pipe.Exists(ctx, c.target)
			}
		}
	}
}

// receive reads the answers to pg's stage and moves it on, past stages with
// nothing to read. Keys gone by then are left out.
func (r *reader) receive(pg *page, now time.Time) error {
	s := r.s
	switch pg.stage {
	case stageTypes:
		values := false
		for i, k := range pg.keys {
			if err := pg.types[i].Err(); err != nil {
				return s.readError(err)
			}
			kv := keyValue{key: k, typ: pg.types[i].Val()}
			if pg.exps != nil {
				if err := pg.exps[i].Err(); err != nil {
					return s.readError(err)
				}
				switch d := pg.exps[i].Val(); {
				case d == -2:
					continue // deleted since SCAN
				case d < 0:
				case s.expireTime:
					kv.expires = d.Milliseconds()
				default:
					kv.expires = now.Add(d).UnixMilli()
				}
			}
			if kv.typ == "none" || pg.refsOnly() && kv.typ != "string" && kv.typ != "hash" {
				continue
			}
			switch kv.typ {
			case "string", "hash", "list", "set", "zset", "stream":
				values = true
			default:
				kv.bad = fmt.Sprintf("type %s is not one the source reads (string, hash, list, set, zset, stream)", kv.typ)
			}
			pg.kvs = append(pg.kvs, kv)
		}
		pg.keys, pg.types, pg.exps = nil, nil, nil
		pg.stage = stageValues
		if !values {
			pg.stage = stageDone
		}
	case stageValues:
		kept := pg.kvs[:0]
		for i := range pg.kvs {
			kv := pg.kvs[i]
			if cmd := pg.vals[i]; cmd != nil {
				if err := cmd.Err(); err == goredis.Nil {
					continue // deleted since TYPE
				} else if err != nil {
					kv.bad = fmt.Sprintf("the key changed while it was read: %v", err)
				} else {
					kv.fields, kv.bad = fields(cmd)
				}
			}
			kept = append(kept, kv)
		}
		pg.kvs, pg.vals = kept, nil
		pg.refs = r.candidates(pg)
		pg.stage = stageExists
		if len(pg.refs) == 0 {
			pg.stage = stageDone
		}
	case stageExists:
		out := pg.refs[:0]
		for _, c := range pg.refs {
			ex := pg.exists[c.target]
			if err := ex.Err(); err != nil {
				return s.readError(err)
			}
			if ex.Val() == 1 {
				out = append(out, c)
			}
		}
		pg.refs, pg.exists = out, nil
		pg.stage = stageDone
	}
	return nil
}

func (s *Source) readError(err error) error {
	return fmt.Errorf("read keys from Redis at %s: %w", s.cfg.Addr, err)
}

// fields converts a value read; bad says why a key cannot be migrated.
func fields(cmd goredis.Cmder) (map[string]any, string) {
	tooMany := func(what string, n int) string {
		return fmt.Sprintf("%s has more than %d elements (%d read); the limit is MaxItems", what, MaxItems, n)
	}
	tooBig := func(n int) string {
		return fmt.Sprintf("the value is %d bytes; the limit is %d", n, MaxValueBytes)
	}
	switch c := cmd.(type) {
	case *goredis.StringCmd:
		v := c.Val()
		if len(v) > MaxValueBytes {
			return nil, tooBig(len(v))
		}
		return stringFields(v), ""
	case *goredis.MapStringStringCmd:
		h := c.Val()
		if len(h) > MaxItems {
			return nil, tooMany("the hash", len(h))
		}
		out := make(map[string]any, len(h))
		n := 0
		for k, v := range h {
			n += len(k) + len(v)
			out[k] = jsonOrString(v)
		}
		if n > MaxValueBytes {
			return nil, tooBig(n)
		}
		return out, ""
	case *goredis.StringSliceCmd:
		l := c.Val()
		what := "the list"
		if c.Name() == "smembers" {
			what = "the set"
			sort.Strings(l)
		}
		if len(l) > MaxItems {
			return nil, tooMany(what, len(l))
		}
		items := make([]any, len(l))
		n := 0
		for i, v := range l {
			items[i] = v
			n += len(v)
		}
		if n > MaxValueBytes {
			return nil, tooBig(n)
		}
		if what == "the set" {
			return map[string]any{"members": items}, ""
		}
		return map[string]any{"items": items}, ""
	case *goredis.ZSliceCmd:
		z := c.Val()
		if len(z) > MaxItems {
			return nil, tooMany("the sorted set", len(z))
		}
		members := make([]any, len(z))
		n := 0
		for i, m := range z {
			name := fmt.Sprint(m.Member)
			n += len(name) + 8
			members[i] = map[string]any{"member": name, "score": m.Score}
		}
		if n > MaxValueBytes {
			return nil, tooBig(n)
		}
		return map[string]any{"members": members}, ""
	case *goredis.XMessageSliceCmd:
		x := c.Val()
		if len(x) > MaxItems {
			return nil, tooMany("the stream", len(x))
		}
		entries := make([]any, len(x))
		n := 0
		for i, e := range x {
			f := make(map[string]any, len(e.Values))
			for k, v := range e.Values {
				s := fmt.Sprint(v)
				n += len(k) + len(s)
				f[k] = s
			}
			n += len(e.ID)
			entries[i] = map[string]any{"id": e.ID, "fields": f}
		}
		if n > MaxValueBytes {
			return nil, tooBig(n)
		}
		return map[string]any{"entries": entries}, ""
	}
	return nil, fmt.Sprintf("unexpected reply %T", cmd)
}

// ref is a reference of a key: field names target, a key of pattern to.
type ref struct {
	key, field, target string
	to                 int
}

// candidates are the string fields of pg's keys naming another key that
// matches a pattern: in the key phase those naming a key of an earlier
// pattern (written before), in the reference phase the others, in Objects'
// pass all. The reader checks that they exist.
func (r *reader) candidates(pg *page) []ref {
	var cands []ref
	for _, kv := range pg.kvs {
		if kv.bad != "" {
			continue
		}
		names := make([]string, 0, len(kv.fields))
		for f, v := range kv.fields {
			if t, ok := v.(string); ok && t != kv.key && keyLike(t) {
				names = append(names, f)
			}
		}
		sort.Strings(names)
		for _, f := range names {
			t := kv.fields[f].(string)
			to := r.s.target(t)
			switch {
			case to < 0:
				continue
			case r.objects:
			case pg.at.phase == phaseKeys && to >= pg.at.pattern, pg.at.phase == phaseRefs && to < pg.at.pattern:
				continue
			}
			cands = append(cands, ref{key: kv.key, field: f, target: t, to: to})
		}
	}
	return cands
}

// dedup drops keys seen among the last dedupWindow keys.
type dedup struct {
	seen map[string]struct{}
	ring []string
	next int
}

func (d *dedup) filter(keys []string) []string {
	if d.seen == nil {
		d.seen = make(map[string]struct{}, dedupWindow)
	}
	out := keys[:0]
	for _, k := range keys {
		if _, dup := d.seen[k]; dup {
			continue
		}
		if len(d.ring) < dedupWindow {
			d.ring = append(d.ring, k)
		} else {
			delete(d.seen, d.ring[d.next])
			d.ring[d.next] = k
			d.next = (d.next + 1) % dedupWindow
		}
		d.seen[k] = struct{}{}
		out = append(out, k)
	}
	return out
}

// Phases of a scan.
const (
	phaseKeys = 'k'
	phaseRefs = 'r'
)

// position is a place in the source: before the SCAN page read with scan,
// of pattern pattern, in phase phase.
type position struct {
	phase   byte
	pattern int
	scan    uint64
}

// encodeCursor writes p as "PHASE/PATTERN/SCAN/SET".
func encodeCursor(p position, set string) string {
	return string(p.phase) + "/" + strconv.Itoa(p.pattern) + "/" + strconv.FormatUint(p.scan, 10) + "/" + set
}

// decodeCursor reads a cursor of a scan of n patterns of set; it accepts
// only what encodeCursor writes.
func decodeCursor(c string, n int, set string) (position, error) {
	parts := strings.Split(c, "/")
	bad := func(why string) (position, error) {
		if len(c) > 80 {
			c = c[:80] + "…"
		}
		return position{}, fmt.Errorf("redis cursor %q is not PHASE/PATTERN/SCAN/SET: %s", c, why)
	}
	if len(parts) != 4 {
		return bad("it has not 4 parts")
	}
	if parts[0] != string(rune(phaseKeys)) && parts[0] != string(rune(phaseRefs)) {
		return bad("the phase is not k or r")
	}
	pat, err := strconv.Atoi(parts[1])
	if err != nil || pat < 0 || strconv.Itoa(pat) != parts[1] {
		return bad("the pattern index is not a number")
	}
	scan, err := strconv.ParseUint(parts[2], 10, 64)
	if err != nil || strconv.FormatUint(scan, 10) != parts[2] {
		return bad("the SCAN cursor is not a number")
	}
	if parts[3] != set {
		return position{}, fmt.Errorf("the stored cursor %q was written for another --db or --pattern list, or by an earlier version (run with the ones used before, or start over with --restart --yes)", c)
	}
	if pat > n || (pat == n && scan != 0) {
		return bad(fmt.Sprintf("pattern %d is past the %d patterns", pat, n))
	}
	return position{phase: parts[0][0], pattern: pat, scan: scan}, nil
}

// Open yields the records after cursor ("" = the start): every pattern's
// keys, each page's references to earlier patterns after its keys, then
// the other references.
func (s *Source) Open(ctx context.Context, cursor string) (migrate.RecordIterator, error) {
	p := position{phase: phaseKeys}
	if cursor != "" {
		var err error
		if p, err = decodeCursor(cursor, len(s.cfg.Patterns), s.set); err != nil {
			return nil, err
		}
	}
	return &iterator{rd: s.newReader(ctx, p, false)}, nil
}

// normal moves the end of the key phase to the start of the references.
func (p position) normal(n int) position {
	if p.phase == phaseKeys && p.pattern >= n {
		return position{phase: phaseRefs}
	}
	return p
}

type iterator struct {
	rd    *reader
	queue []item
}

type item struct {
	rec migrate.Record
	err error
}

func (it *iterator) Close() error { return nil }

func (it *iterator) Next() (migrate.Record, error) {
	for len(it.queue) == 0 {
		done, err := it.fill()
		if err != nil {
			return migrate.Record{}, err
		}
		if done {
			return migrate.Record{}, io.EOF
		}
	}
	x := it.queue[0]
	it.queue[0] = item{}
	it.queue = it.queue[1:]
	return x.rec, x.err
}

// fill reads the next page into the queue; done at the end of the source.
func (it *iterator) fill() (done bool, err error) {
	pg, err := it.rd.page()
	if err != nil {
		return false, err
	}
	if pg == nil {
		return true, nil
	}
	s := it.rd.s
	pattern := s.cfg.Patterns[pg.at.pattern]
	at := encodeCursor(pg.at, s.set)
	start := len(it.queue)
	if pg.at.phase == phaseKeys {
		for _, kv := range pg.kvs {
			pos := keyPosition(kv.key)
			if kv.bad != "" {
				it.queue = append(it.queue, item{err: &migrate.BadRecordError{Position: pos, Cursor: at, Raw: truncate(kv.key, 1024), Reason: kv.bad}})
				continue
			}
			md := map[string]string{MetaType: kv.typ}
			if kv.expires > 0 {
				md[MetaExpires] = time.UnixMilli(kv.expires).UTC().Format(time.RFC3339Nano)
			}
			it.queue = append(it.queue, item{rec: migrate.Record{Object: pattern, Key: kv.key, Fields: kv.fields,
				Tags: []string{pattern}, Metadata: md, Cursor: at, Position: pos}})
		}
	}
	for _, r := range pg.refs {
		it.queue = append(it.queue, item{rec: migrate.Record{
			Object:   RelationName(pattern, r.field),
			Key:      r.key + "->" + r.field,
			Fields:   map[string]any{"from": r.key, "field": r.field, "to": r.target},
			Refs:     []migrate.Reference{{Kind: r.field, FromObject: pattern, FromKey: r.key, ToObject: s.cfg.Patterns[r.to], ToKey: r.target}},
			Cursor:   at,
			Position: keyPosition(r.key) + " field " + strconv.Quote(r.field)}})
	}
	if len(it.queue) > start {
		last := &it.queue[len(it.queue)-1]
		c := encodeCursor(pg.after, s.set)
		var bad *migrate.BadRecordError
		if errors.As(last.err, &bad) {
			bad.Cursor = c
		} else {
			last.rec.Cursor = c
		}
	}
	return false, nil
}

func keyPosition(key string) string { return "key " + strconv.Quote(truncate(key, 200)) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
