// Package postgres is the PostgreSQL source of migrate, over jackc/pgx.
//
// Every table of one schema (or the tables named) is an object; a row is a
// record whose key is its primary key, so memory ids are "table:key" and a
// replayed batch overwrites itself. Rows are read in primary-key order by
// keyset pagination (WHERE (pk) > (last key) ORDER BY pk LIMIT n; never
// OFFSET), composite keys by row-value comparison. A table without a
// primary key is refused: there is no stable order or id to resume by.
//
// One run reads in one REPEATABLE READ READ ONLY transaction, so it sees
// one consistent snapshot of every table; rows written or deleted during
// the run are not seen. A resumed run opens a new transaction and so a new
// snapshot: it continues after the stored key, so rows inserted since with
// a greater key are read, rows inserted with a smaller key or deleted are
// not, and rows updated after being read keep their migrated version (run
// `migrate verify` to see the difference, or --restart --yes to start
// over).
//
// A row's source tag is its table. Foreign keys come from pg_constraint. A foreign key to the primary key
// of another migrated table becomes a reference of the row (an association
// to the referenced row's memory, kind = the constraint name); tables are
// read in dependency order so the referenced rows are written first. A
// foreign key that cannot be ordered that way (to its own table, or in a
// cycle) becomes an object of its own, "table.constraint", a relation
// read after every table, whose records are the rows' references. Foreign
// keys to tables outside the run, or to columns other than the primary key,
// are not followed.
//
// Values: text types are strings; smallint, integer and bigint int64;
// real and double precision float64; numeric an int64 when it is an
// integer that fits, else its exact decimal as a JSON number (NaN and
// infinities as strings); boolean bool; timestamp and timestamptz a time in
// UTC; date its ISO text ("2024-01-31"); uuid its text; json and jsonb the
// decoded value (maps, lists, exact numbers); arrays lists; bytea its
// standard base64 text; NULL nil; a pgvector vector a list of float32 (so
// it can be the embedding, as can a real[] column); any other type its
// PostgreSQL text form.
package postgres

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/engram-ops/engram-ops/migrate"
)

// DefaultSchema is the schema read when none is given.
const DefaultSchema = "public"

// DefaultPageSize is the number of rows one keyset query reads.
const DefaultPageSize = 2000

// ErrSelection is a schema or table selection the source cannot migrate
// (a missing schema or table, a table without a primary key).
var ErrSelection = errors.New("cannot migrate this selection")

// Source reads the tables of one schema.
type Source struct {
	DSN    string
	Schema string   // default DefaultSchema
	Tables []string // default every table of Schema
	// PageSize is the number of rows per keyset query (default
	// DefaultPageSize).
	PageSize int
}

func (s *Source) Kind() string { return "postgres" }

func (s *Source) schema() string {
	if s.Schema == "" {
		return DefaultSchema
	}
	return s.Schema
}

// connect opens a connection with the session settings the text forms
// depend on (ISO dates, UTC).
func (s *Source) connect(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.DSN)
	if err != nil {
		return nil, fmt.Errorf("the PostgreSQL DSN is not valid: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	cfg.RuntimeParams["DateStyle"] = "ISO, YMD"
	cfg.RuntimeParams["TimeZone"] = "UTC"
	cfg.RuntimeParams["IntervalStyle"] = "postgres"
	cfg.RuntimeParams["extra_float_digits"] = "1"
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "engram-ops-migrate"
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL at %s:%d as %q: %w (check the DSN's host, port, user, password and database)", cfg.Host, cfg.Port, cfg.User, err)
	}
	return conn, nil
}

// column is one column of a table and how it is read.
type column struct {
	name  string
	typ   string // format_type, for casts
	expr  string // the select expression
	jsonb bool   // read as text, decoded as JSON
}

// table is one table of the run.
type table struct {
	name  string
	ident string // quoted schema.table
	cols  []column
	pk    []int // indexes into cols
	fks   []*foreignKey
}

type foreignKey struct {
	name     string
	from     *table
	to       *table
	cols     []int // from's columns, in the order of to's primary key
	deferred bool  // read as a relation object after every table
}

// object is one object of the run and its keyset queries.
type object struct {
	migrate.Object
	t     *table
	fk    *foreignKey // a deferred foreign key's relation object
	first string      // the first page's query
	next  string      // a later page's query ($1..$n: the last key)
	refs  []*foreignKey
	tags  []string // an entity's records' source tags: the table
}

// catalog reads the run's tables, columns, keys and foreign keys and
// orders them into objects.
func (s *Source) catalog(ctx context.Context, q pgx.Tx) ([]*object, error) {
	schema := s.schema()
	var exists bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	if !exists {
		return nil, fmt.Errorf("%w: schema %q does not exist", ErrSelection, schema)
	}
	rows, err := q.Query(ctx, `SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY c.relname`, schema)
	if err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	byOID := map[uint32]*table{}
	byName := map[string]*table{}
	var all []string
	for rows.Next() {
		var oid uint32
		var name string
		if err := rows.Scan(&oid, &name); err != nil {
			return nil, err
		}
		t := &table{name: name, ident: pgx.Identifier{schema, name}.Sanitize()}
		byOID[oid], byName[name] = t, t
		all = append(all, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	if len(s.Tables) > 0 {
		keep := map[uint32]*table{}
		var missing []string
		for _, name := range s.Tables {
			t := byName[name]
			if t == nil {
				missing = append(missing, strconv.Quote(name))
				continue
			}
			for oid, x := range byOID {
				if x == t {
					keep[oid] = t
				}
			}
		}
		if len(missing) > 0 {
			return nil, fmt.Errorf("%w: schema %q has no table %s (its tables: %s)", ErrSelection, schema, strings.Join(missing, ", "), list(all))
		}
		byOID = keep
	}
	if len(byOID) == 0 {
		return nil, fmt.Errorf("%w: schema %q has no tables", ErrSelection, schema)
	}
	oids := make([]uint32, 0, len(byOID))
	for oid := range byOID {
		oids = append(oids, oid)
	}
	rows, err = q.Query(ctx, `SELECT a.attrelid, a.attnum, a.attname, t.typname, format_type(a.atttypid, a.atttypmod), t.typcategory = 'A', coalesce(et.typname, '')
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
		WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum`, oids)
	if err != nil {
		return nil, fmt.Errorf("read the columns: %w", err)
	}
	// attnum maps a table's attribute numbers (with gaps where columns were
	// dropped) to indexes into its cols.
	attnum := map[*table]map[int16]int{}
	for rows.Next() {
		var oid uint32
		var num int16
		var name, typname, typ, elem string
		var isArray bool
		if err := rows.Scan(&oid, &num, &name, &typname, &typ, &isArray, &elem); err != nil {
			return nil, err
		}
		t := byOID[oid]
		c := column{name: name, typ: typ, expr: "r." + pgx.Identifier{name}.Sanitize()}
		switch {
		case typname == "json" || typname == "jsonb":
			c.expr += "::text"
			c.jsonb = true
		case typname == "vector":
			c.expr += "::real[]"
		case isArray && native[elem]:
		case !isArray && native[typname]:
		default:
			c.expr += "::text"
		}
		if attnum[t] == nil {
			attnum[t] = map[int16]int{}
		}
		attnum[t][num] = len(t.cols)
		t.cols = append(t.cols, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the columns: %w", err)
	}
	rows, err = q.Query(ctx, `SELECT conrelid, conkey FROM pg_constraint WHERE contype = 'p' AND conrelid = ANY($1)`, oids)
	if err != nil {
		return nil, fmt.Errorf("read the primary keys: %w", err)
	}
	for rows.Next() {
		var oid uint32
		var key []int16
		if err := rows.Scan(&oid, &key); err != nil {
			return nil, err
		}
		t := byOID[oid]
		for _, k := range key {
			t.pk = append(t.pk, attnum[t][k])
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the primary keys: %w", err)
	}
	var nopk []string
	for _, t := range byOID {
		if len(t.pk) == 0 {
			nopk = append(nopk, t.name)
		}
	}
	if len(nopk) > 0 {
		sort.Strings(nopk)
		return nil, fmt.Errorf("%w: table %s of schema %q has no primary key, so its rows have no stable order or id to resume by (add a primary key, or leave it out with --tables)", ErrSelection, strings.Join(nopk, ", "), schema)
	}
	rows, err = q.Query(ctx, `SELECT conname, conrelid, confrelid, conkey, confkey FROM pg_constraint
		WHERE contype = 'f' AND conrelid = ANY($1) ORDER BY conrelid, conname`, oids)
	if err != nil {
		return nil, fmt.Errorf("read the foreign keys: %w", err)
	}
	for rows.Next() {
		var name string
		var from, to uint32
		var key, fkey []int16
		if err := rows.Scan(&name, &from, &to, &key, &fkey); err != nil {
			return nil, err
		}
		ft, tt := byOID[from], byOID[to]
		if tt == nil || len(key) != len(tt.pk) {
			continue // a table outside the run, or not its primary key
		}
		fk := &foreignKey{name: name, from: ft, to: tt, cols: make([]int, len(tt.pk))}
		ok := true
		for i, p := range tt.pk {
			j := -1
			for x, k := range fkey {
				if attnum[tt][k] == p {
					j = x
				}
			}
			if j < 0 {
				ok = false
				break
			}
			fk.cols[i] = attnum[ft][key[j]]
		}
		if ok {
			ft.fks = append(ft.fks, fk)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the foreign keys: %w", err)
	}
	tables := make([]*table, 0, len(byOID))
	for _, t := range byOID {
		tables = append(tables, t)
	}
	return s.objects(order(tables)), nil
}

// native lists the types whose pgx value is used as it is (also as array
// elements); others are read as text.
var native = map[string]bool{
	"int2": true, "int4": true, "int8": true, "float4": true, "float8": true, "numeric": true, "bool": true,
	"text": true, "varchar": true, "bpchar": true, "name": true, "timestamp": true, "timestamptz": true,
	"uuid": true, "bytea": true,
}

// order sorts tables so that every table comes after the tables its
// foreign keys reference, by name among equals; a foreign key that cannot
// be honoured (to its own table, or in a cycle) is marked deferred.
func order(tables []*table) []*table {
	sort.Slice(tables, func(i, j int) bool { return tables[i].name < tables[j].name })
	done := map[*table]bool{}
	var out []*table
	for len(out) < len(tables) {
		var next *table
		for _, t := range tables {
			if done[t] {
				continue
			}
			ready := true
			for _, fk := range t.fks {
				if fk.to != t && !done[fk.to] {
					ready = false
					break
				}
			}
			if ready {
				next = t
				break
			}
		}
		if next == nil {
			// A cycle: take the first table left.
			for _, t := range tables {
				if !done[t] {
					next = t
					break
				}
			}
		}
		for _, fk := range next.fks {
			fk.deferred = !done[fk.to]
		}
		done[next] = true
		out = append(out, next)
	}
	return out
}

// objects builds the objects (tables, then deferred foreign keys) and their
// queries.
func (s *Source) objects(tables []*table) []*object {
	limit := s.PageSize
	if limit <= 0 {
		limit = DefaultPageSize
	}
	var out, rels []*object
	for _, t := range tables {
		keys := make([]string, len(t.pk))
		params := make([]string, len(t.pk))
		for i, p := range t.pk {
			keys[i] = "r." + pgx.Identifier{t.cols[p].name}.Sanitize()
			params[i] = fmt.Sprintf("$%d::text::%s", i+1, t.cols[p].typ)
		}
		pk := strings.Join(keys, ", ")
		after := fmt.Sprintf("(%s) > (%s)", pk, strings.Join(params, ", "))
		tail := fmt.Sprintf(" ORDER BY %s LIMIT %d", pk, limit)
		sel := make([]string, 0, len(keys)+len(t.cols))
		for _, k := range keys {
			sel = append(sel, k+"::text")
		}
		o := &object{Object: migrate.Object{Name: t.name, Kind: migrate.Entity, Count: -1}, t: t, tags: []string{t.name}}
		for _, c := range t.cols {
			sel = append(sel, c.expr)
			o.Fields = append(o.Fields, c.name)
		}
		for _, fk := range t.fks {
			if fk.deferred {
				rels = append(rels, fkObject(fk, sel[:len(keys)], after, tail))
				continue
			}
			o.refs = append(o.refs, fk)
			sel = append(sel, fkExprs(fk)...)
		}
		from := fmt.Sprintf("SELECT %s FROM %s r", strings.Join(sel, ", "), t.ident)
		o.first = from + tail
		o.next = from + " WHERE " + after + tail
		out = append(out, o)
	}
	return append(out, rels...)
}

// fkExprs selects a foreign key's columns as the text of the referenced
// primary key's types, so they match the referenced rows' keys.
func fkExprs(fk *foreignKey) []string {
	out := make([]string, len(fk.cols))
	for i, c := range fk.cols {
		out[i] = fmt.Sprintf("r.%s::%s::text", pgx.Identifier{fk.from.cols[c].name}.Sanitize(), fk.to.cols[fk.to.pk[i]].typ)
	}
	return out
}

func fkObject(fk *foreignKey, keys []string, after, tail string) *object {
	notNull := make([]string, len(fk.cols))
	for i, c := range fk.cols {
		notNull[i] = "r." + pgx.Identifier{fk.from.cols[c].name}.Sanitize() + " IS NOT NULL"
	}
	where := strings.Join(notNull, " AND ")
	from := fmt.Sprintf("SELECT %s, %s FROM %s r WHERE %s", strings.Join(keys, ", "), strings.Join(fkExprs(fk), ", "), fk.from.ident, where)
	return &object{Object: migrate.Object{Name: fk.from.name + "." + fk.name, Kind: migrate.Relation, Count: -1, Fields: []string{}},
		t: fk.from, fk: fk, first: from + tail, next: from + " AND " + after + tail}
}

// countQuery counts an object's records.
func (o *object) countQuery() string {
	q := o.first[strings.Index(o.first, " FROM "):strings.LastIndex(o.first, " ORDER BY ")]
	return "SELECT count(*)" + q
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	if len(names) > 30 {
		return strings.Join(names[:30], ", ") + fmt.Sprintf(", … (%d in all)", len(names))
	}
	return strings.Join(names, ", ")
}

// begin connects and starts the run's snapshot transaction.
func (s *Source) begin(ctx context.Context) (*pgx.Conn, pgx.Tx, error) {
	conn, err := s.connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		conn.Close(context.Background())
		return nil, nil, fmt.Errorf("start a read-only repeatable-read transaction: %w", err)
	}
	return conn, tx, nil
}

// Objects lists the tables (with their row counts and columns) and the
// deferred foreign keys, in the order they are read.
func (s *Source) Objects(ctx context.Context) ([]migrate.Object, error) {
	conn, tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	defer tx.Rollback(context.Background())
	objs, err := s.catalog(ctx, tx)
	if err != nil {
		return nil, err
	}
	out := make([]migrate.Object, len(objs))
	for i, o := range objs {
		if err := tx.QueryRow(ctx, o.countQuery()).Scan(&o.Count); err != nil {
			return nil, fmt.Errorf("count %s: %w", o.Name, err)
		}
		out[i] = o.Object
	}
	return out, nil
}

// SizeBytes is the tables' size on disk with their indexes and TOAST.
func (s *Source) SizeBytes() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, tx, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	defer tx.Rollback(context.Background())
	objs, err := s.catalog(ctx, tx)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, o := range objs {
		if o.fk != nil {
			continue
		}
		var size int64
		if err := tx.QueryRow(ctx, "SELECT pg_total_relation_size($1::regclass)", o.t.ident).Scan(&size); err != nil {
			return 0, fmt.Errorf("size of %s: %w", o.Name, err)
		}
		n += size
	}
	return n, nil
}

// Open reads the records after cursor ("" = from the start) in a snapshot
// of its own.
func (s *Source) Open(ctx context.Context, cursor string) (migrate.RecordIterator, error) {
	var obj string
	var key []string
	if cursor != "" {
		var err error
		if obj, key, err = DecodeCursor(cursor); err != nil {
			return nil, err
		}
	}
	conn, tx, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	objs, err := s.catalog(ctx, tx)
	if err != nil {
		tx.Rollback(context.Background())
		conn.Close(context.Background())
		return nil, err
	}
	it := &iterator{ctx: ctx, conn: conn, tx: tx, objs: objs}
	if cursor != "" {
		it.i = -1
		var names []string
		for i, o := range objs {
			names = append(names, o.Name)
			if o.Name == obj {
				it.i = i
			}
		}
		if it.i < 0 || len(key) != len(objs[it.i].t.pk) {
			it.Close()
			if it.i < 0 {
				return nil, fmt.Errorf("the stored cursor is in %q, which is not among the objects of this run (%s): the schema or --tables changed since the migration started (start over with --restart --yes)", obj, list(names))
			}
			return nil, fmt.Errorf("the stored cursor's key of %q has %d columns but its primary key has %d: the table changed since the migration started (start over with --restart --yes)", obj, len(key), len(objs[it.i].t.pk))
		}
		it.last = key
	}
	return it, nil
}

// iterator reads one object's pages after another in the transaction.
type iterator struct {
	ctx  context.Context
	conn *pgx.Conn
	tx   pgx.Tx
	objs []*object
	i    int      // current object
	last []string // the current object's last key read; nil: its start
	page []migrate.Record
	at   int
}

func (it *iterator) Close() error {
	if it.conn == nil {
		return nil
	}
	it.tx.Rollback(context.Background())
	err := it.conn.Close(context.Background())
	it.conn = nil
	return err
}

func (it *iterator) Next() (migrate.Record, error) {
	for it.at == len(it.page) {
		if it.i >= len(it.objs) {
			return migrate.Record{}, io.EOF
		}
		if err := it.fetch(); err != nil {
			return migrate.Record{}, err
		}
		if len(it.page) == 0 {
			it.i++
			it.last = nil
		}
	}
	rec := it.page[it.at]
	it.page[it.at] = migrate.Record{}
	it.at++
	return rec, nil
}

// fetch reads the current object's next page.
func (it *iterator) fetch() error {
	o := it.objs[it.i]
	q, args := o.first, []any(nil)
	if it.last != nil {
		q = o.next
		for _, k := range it.last {
			args = append(args, k)
		}
	}
	rows, err := it.tx.Query(it.ctx, q, args...)
	if err != nil {
		return fmt.Errorf("read %s: %w", o.Name, err)
	}
	defer rows.Close()
	it.page, it.at = it.page[:0], 0
	npk := len(o.t.pk)
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return fmt.Errorf("read %s: %w", o.Name, err)
		}
		key := make([]string, npk)
		for i := range key {
			key[i], _ = vals[i].(string)
		}
		rec := migrate.Record{Object: o.Name, Key: strings.Join(key, ":"), Cursor: EncodeCursor(o.Name, key)}
		rec.Position = o.Name + " " + keyPosition(o.t, key)
		rest := vals[npk:]
		if o.fk != nil {
			rec.Fields = map[string]any{}
			rec.Refs = []migrate.Reference{{Kind: o.fk.name, FromObject: o.t.name, FromKey: rec.Key, ToObject: o.fk.to.name, ToKey: textKey(rest)}}
		} else {
			rec.Tags = o.tags
			rec.Fields = make(map[string]any, len(o.t.cols))
			for i, c := range o.t.cols {
				v, err := convert(rest[i], c.jsonb)
				if err != nil {
					return &migrate.BadRecordError{Position: rec.Position, Cursor: rec.Cursor, Raw: truncate(fmt.Sprint(rest[i]), 1024), Reason: fmt.Sprintf("column %s: %v", c.name, err)}
				}
				rec.Fields[c.name] = v
			}
			rest = rest[len(o.t.cols):]
			for _, fk := range o.refs {
				vals := rest[:len(fk.cols)]
				rest = rest[len(fk.cols):]
				if k := textKey(vals); k != "" {
					rec.Refs = append(rec.Refs, migrate.Reference{Kind: fk.name, ToObject: fk.to.name, ToKey: k})
				}
			}
		}
		it.page = append(it.page, rec)
		it.last = key
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read %s: %w", o.Name, err)
	}
	return nil
}

// textKey joins a key's text columns; "" when one is NULL (no reference).
func textKey(vals []any) string {
	parts := make([]string, len(vals))
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			return ""
		}
		parts[i] = s
	}
	return strings.Join(parts, ":")
}

// keyPosition names a row by its primary key: "id=7", "a=1,b=2".
func keyPosition(t *table, key []string) string {
	var b strings.Builder
	for i, p := range t.pk {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t.cols[p].name)
		b.WriteByte('=')
		b.WriteString(key[i])
	}
	return b.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// convert turns a pgx value into a record value.
func convert(v any, jsonText bool) (any, error) {
	if jsonText {
		s, ok := v.(string)
		if !ok {
			return nil, nil
		}
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var out any
		if err := dec.Decode(&out); err != nil {
			return nil, fmt.Errorf("json: %v", err)
		}
		return jsonValue(out), nil
	}
	switch x := v.(type) {
	case nil, string, bool, int64, float64:
		return x, nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case float32:
		return float64(x), nil
	case time.Time:
		return x.UTC(), nil
	case [16]byte:
		return pgtype.UUID{Bytes: x, Valid: true}.String(), nil
	case []byte:
		return base64.StdEncoding.EncodeToString(x), nil
	case pgtype.Numeric:
		return numeric(x)
	case pgtype.InfinityModifier:
		return x.String(), nil
	case []any:
		if f, ok := float32s(x); ok {
			return f, nil
		}
		for i, e := range x {
			c, err := convert(e, false)
			if err != nil {
				return nil, err
			}
			x[i] = c
		}
		return x, nil
	}
	return fmt.Sprint(v), nil
}

// float32s is a real[] (or vector) without NULLs as a vector.
func float32s(x []any) ([]float32, bool) {
	if len(x) == 0 {
		return nil, false
	}
	out := make([]float32, len(x))
	for i, e := range x {
		f, ok := e.(float32)
		if !ok {
			return nil, false
		}
		out[i] = f
	}
	return out, true
}

func numeric(n pgtype.Numeric) (any, error) {
	if !n.Valid {
		return nil, nil
	}
	b, err := n.MarshalJSON()
	if err != nil {
		return nil, err
	}
	b = bytes.Trim(b, `"`)
	if i, err := strconv.ParseInt(string(b), 10, 64); err == nil {
		return i, nil
	}
	if n.NaN || n.InfinityModifier != pgtype.Finite {
		return string(b), nil
	}
	return json.Number(b), nil
}

// jsonValue makes decoded JSON numbers int64 when they are integers that
// fit, else exact json.Numbers.
func jsonValue(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := strconv.ParseInt(string(x), 10, 64); err == nil {
			return i
		}
		return x
	case map[string]any:
		for k, e := range x {
			x[k] = jsonValue(e)
		}
	case []any:
		for i, e := range x {
			x[i] = jsonValue(e)
		}
	}
	return v
}

// cursorPrefix marks (and versions) a PostgreSQL cursor.
const cursorPrefix = "pg1."

// EncodeCursor is the position after the row of object with primary key
// key (its columns' text): opaque and stable.
func EncodeCursor(object string, key []string) string {
	var b strings.Builder
	b.WriteString(object)
	for _, k := range key {
		b.WriteByte(0)
		b.WriteString(k)
	}
	return cursorPrefix + base64.RawURLEncoding.EncodeToString([]byte(b.String()))
}

// DecodeCursor reads a cursor EncodeCursor wrote.
func DecodeCursor(c string) (object string, key []string, err error) {
	bad := func(why string) error {
		return fmt.Errorf("postgres cursor %q is not one this version wrote: %s", truncate(c, 80), why)
	}
	rest, ok := strings.CutPrefix(c, cursorPrefix)
	if !ok {
		return "", nil, bad("no " + cursorPrefix + " prefix")
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil {
		return "", nil, bad("not base64")
	}
	if !utf8.Valid(raw) {
		return "", nil, bad("not UTF-8")
	}
	parts := strings.Split(string(raw), "\x00")
	if len(parts) < 2 || parts[0] == "" {
		return "", nil, bad("no table and key")
	}
	return parts[0], parts[1:], nil
}
