package neo4j

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	driver "github.com/neo4j/neo4j-go-driver/v5/neo4j"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/config"
	"github.com/neo4j/neo4j-go-driver/v5/neo4j/dbtype"

	"github.com/engram-ops/engram-ops/migrate"
)

// DefaultPageSize is the number of nodes or relationships one paging query
// reads.
const DefaultPageSize = 1000

// The queries the live source sends. Pages are read by element id: every
// element id is greater than "", so the first page needs no query of its
// own. The object queries group by first label (or type) and property
// names, so their rows are few and the union of the names is built here.
const (
	NodeObjectsQuery = "MATCH (n) RETURN head(labels(n)) AS label, keys(n) AS keys, count(*) AS count"
	RelObjectsQuery  = "MATCH ()-[r]->() RETURN type(r) AS type, keys(r) AS keys, count(*) AS count"
	NodePageQuery    = "MATCH (n) WHERE elementId(n) > $after RETURN n ORDER BY elementId(n) LIMIT $limit"
	RelPageQuery     = "MATCH (a)-[r]->(b) WHERE elementId(r) > $after RETURN r, labels(a) AS start, labels(b) AS end ORDER BY elementId(r) LIMIT $limit"
)

// Bolt is a live Neo4j database read over Bolt with the official driver.
//
// It yields what the APOC export of the same graph yields (the same
// objects, keys, tags, fields and references, see nodeRecord), so a graph
// migrated either way lands as the same memories: a record's key is the
// node's or relationship's numeric id, as APOC writes it. Nodes come first,
// then relationships, each paged by element id, one read transaction per
// page; the cursor is the phase and the last element id read. A resumed
// run continues after that element id: nodes or relationships created
// since with a greater element id are read, deleted ones are not removed
// from Engram, and changed ones keep their migrated version (run `migrate
// verify` to see the difference).
//
// Property values: integers int64, floats float64, strings, booleans and
// null as they are; lists and maps element by element; a datetime a
// time.Time with its offset (a named zone becomes its offset at that
// instant); a date its ISO text ("2024-01-31", as APOC writes it); a
// local datetime, local time, time and duration their ISO 8601 text
// ("2024-01-31T10:00:00", "10:00:00", "10:00:00+01:00", "P1Y2M3DT4H5M6.5S"); a
// point a map {"crs", "x", "y"[, "z"]} (cartesian) or {"crs", "longitude",
// "latitude"[, "height"]} (WGS-84); a byte array its standard base64 text.
type Bolt struct {
	URI      string
	User     string
	Password string
	// Database is the database read; "" is the server's default.
	Database string
	// PageSize is the number of nodes or relationships per query (default
	// DefaultPageSize).
	PageSize int

	mu  sync.Mutex
	drv driver.DriverWithContext
}

func (b *Bolt) Kind() string { return "neo4j" }

// Close closes the driver's connections.
func (b *Bolt) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drv == nil {
		return nil
	}
	err := b.drv.Close(context.Background())
	b.drv = nil
	return err
}

// driver connects on first use: a wrong URI, an unreachable server and
// refused credentials fail here.
func (b *Bolt) driver(ctx context.Context) (driver.DriverWithContext, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.drv != nil {
		return b.drv, nil
	}
	u, err := url.Parse(b.URI)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("the Neo4j URI %q is not valid: give bolt://HOST:PORT (or neo4j://, bolt+s://, neo4j+s://)", b.URI)
	}
	d, err := driver.NewDriverWithContext(b.URI, driver.BasicAuth(b.User, b.Password, ""), func(c *config.Config) {
		c.SocketConnectTimeout = 10 * time.Second
		c.ConnectionAcquisitionTimeout = time.Minute
		c.UserAgent = "engram-ops-migrate"
	})
	if err != nil {
		return nil, fmt.Errorf("the Neo4j URI %q is not valid: %w", b.URI, err)
	}
	if err := d.VerifyConnectivity(ctx); err != nil {
		d.Close(context.Background())
		return nil, b.error(err)
	}
	b.drv = d
	return d, nil
}

// error says what a driver error means for the run.
func (b *Bolt) error(err error) error {
	var ne *driver.Neo4jError
	if errors.As(err, &ne) {
		switch {
		case strings.HasPrefix(ne.Code, "Neo.ClientError.Security."):
			return fmt.Errorf("the Neo4j server at %s refused the credentials of user %q (--user, and the password in the variable --password-env names): %w", b.URI, b.User, err)
		case ne.Code == "Neo.ClientError.Database.DatabaseNotFound":
			return fmt.Errorf("the Neo4j server at %s has no database %q (--database): %w", b.URI, b.Database, err)
		}
		return fmt.Errorf("the Neo4j server at %s: %w", b.URI, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if driver.IsConnectivityError(err) {
		return fmt.Errorf("the Neo4j server at %s is unreachable: %w (Try: check --uri, and that Neo4j listens for Bolt there)", b.URI, err)
	}
	return fmt.Errorf("the Neo4j server at %s: %w", b.URI, err)
}

func (b *Bolt) pageSize() int {
	if b.PageSize <= 0 {
		return DefaultPageSize
	}
	return b.PageSize
}

// read runs query in a read transaction of its own and returns its rows.
func (b *Bolt) read(ctx context.Context, query string, params map[string]any) ([]*driver.Record, error) {
	d, err := b.driver(ctx)
	if err != nil {
		return nil, err
	}
	s := d.NewSession(ctx, driver.SessionConfig{AccessMode: driver.AccessModeRead, DatabaseName: b.Database})
	defer s.Close(context.Background())
	rows, err := driver.ExecuteRead(ctx, s, func(tx driver.ManagedTransaction) ([]*driver.Record, error) {
		res, err := tx.Run(ctx, query, params)
		if err != nil {
			return nil, err
		}
		return res.Collect(ctx)
	})
	if err != nil {
		return nil, b.error(err)
	}
	return rows, nil
}

// Objects lists every first label (Unlabelled for nodes without labels)
// with its node count and the union of its nodes' property names, then
// every relationship type likewise, each by name. A node with several
// labels counts once, for its first label (see nodeRecord).
func (b *Bolt) Objects(ctx context.Context) ([]migrate.Object, error) {
	var out []migrate.Object
	for _, q := range []struct {
		query string
		kind  migrate.ObjectKind
	}{{NodeObjectsQuery, migrate.Entity}, {RelObjectsQuery, migrate.Relation}} {
		rows, err := b.read(ctx, q.query, nil)
		if err != nil {
			return nil, err
		}
		type acc struct {
			count  int64
			fields map[string]bool
		}
		objs := map[string]*acc{}
		for _, r := range rows {
			if len(r.Values) != 3 {
				return nil, fmt.Errorf("the Neo4j server at %s answered %q with %d columns, not 3", b.URI, q.query, len(r.Values))
			}
			name, _ := r.Values[0].(string)
			if name == "" {
				if q.kind == migrate.Relation {
					return nil, fmt.Errorf("the Neo4j server at %s answered a relationship without a type", b.URI)
				}
				name = Unlabelled
			}
			keys, _ := r.Values[1].([]any)
			n, ok := r.Values[2].(int64)
			if !ok {
				return nil, fmt.Errorf("the Neo4j server at %s answered a count that is a %T", b.URI, r.Values[2])
			}
			a := objs[name]
			if a == nil {
				a = &acc{fields: map[string]bool{}}
				objs[name] = a
			}
			a.count += n
			for _, k := range keys {
				if s, ok := k.(string); ok {
					a.fields[s] = true
				}
			}
		}
		names := make([]string, 0, len(objs))
		for name := range objs {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			a := objs[name]
			o := migrate.Object{Name: name, Kind: q.kind, Count: a.count, Fields: make([]string, 0, len(a.fields))}
			for f := range a.fields {
				o.Fields = append(o.Fields, f)
			}
			sort.Strings(o.Fields)
			out = append(out, o)
		}
	}
	return out, nil
}

// The phases of a run, as its cursor names them.
const (
	phaseNodes = 'n'
	phaseRels  = 'r'
)

// Open yields the nodes and then the relationships after cursor ("" = the
// start).
func (b *Bolt) Open(ctx context.Context, cursor string) (migrate.RecordIterator, error) {
	it := &boltIterator{ctx: ctx, b: b, phase: phaseNodes}
	if cursor != "" {
		phase, after, err := DecodeCursor(cursor)
		if err != nil {
			return nil, err
		}
		it.phase, it.after = phase, after
	}
	if _, err := b.driver(ctx); err != nil {
		return nil, err
	}
	return it, nil
}

// boltIterator reads one page after another.
type boltIterator struct {
	ctx   context.Context
	b     *Bolt
	phase byte   // phaseNodes, phaseRels, or 0 at the end
	after string // the phase's last element id read
	page  []pageItem
	at    int
}

// pageItem is a record, or a record that could not be converted.
type pageItem struct {
	rec migrate.Record
	err error
}

func (it *boltIterator) Close() error { return nil }

func (it *boltIterator) Next() (migrate.Record, error) {
	for it.at == len(it.page) {
		if it.phase == 0 {
			return migrate.Record{}, io.EOF
		}
		if err := it.fetch(); err != nil {
			return migrate.Record{}, err
		}
		if len(it.page) == 0 {
			if it.phase == phaseNodes {
				it.phase, it.after = phaseRels, ""
			} else {
				it.phase = 0
			}
		}
	}
	p := it.page[it.at]
	it.page[it.at] = pageItem{}
	it.at++
	return p.rec, p.err
}

// fetch reads the phase's next page.
func (it *boltIterator) fetch() error {
	q := NodePageQuery
	if it.phase == phaseRels {
		q = RelPageQuery
	}
	rows, err := it.b.read(it.ctx, q, map[string]any{"after": it.after, "limit": int64(it.b.pageSize())})
	if err != nil {
		return err
	}
	it.page, it.at = it.page[:0], 0
	for _, r := range rows {
		var p pageItem
		var eid string
		if it.phase == phaseNodes {
			p, eid = it.node(r)
		} else {
			p, eid = it.relationship(r)
		}
		if eid == "" || eid <= it.after {
			return fmt.Errorf("the Neo4j server at %s returned element id %q after %q: pages must come in increasing element id order", it.b.URI, eid, it.after)
		}
		it.after = eid
		it.page = append(it.page, p)
	}
	return nil
}

func (it *boltIterator) node(r *driver.Record) (pageItem, string) {
	var n dbtype.Node
	ok := len(r.Values) == 1
	if ok {
		n, ok = r.Values[0].(dbtype.Node)
	}
	if !ok {
		return pageItem{err: fmt.Errorf("the Neo4j server at %s answered the node query with %d values, not a node", it.b.URI, len(r.Values))}, ""
	}
	cur := EncodeCursor(phaseNodes, n.ElementId)
	pos := "node " + n.ElementId
	props, err := driverProperties(n.Props)
	if err != nil {
		return pageItem{err: &migrate.BadRecordError{Position: pos, Cursor: cur, Raw: truncate(fmt.Sprint(n.Props)), Reason: err.Error()}}, n.ElementId
	}
	//lint:ignore SA1019 the numeric id is the key APOC exports use
	rec := nodeRecord(strconv.FormatInt(n.Id, 10), n.Labels, props)
	rec.Cursor, rec.Position = cur, pos
	return pageItem{rec: rec}, n.ElementId
}

func (it *boltIterator) relationship(r *driver.Record) (pageItem, string) {
	var rel dbtype.Relationship
	var start, end []any
	ok := len(r.Values) == 3
	if ok {
		rel, ok = r.Values[0].(dbtype.Relationship)
		start, _ = r.Values[1].([]any)
		end, _ = r.Values[2].([]any)
	}
	if !ok || rel.Type == "" {
		return pageItem{err: fmt.Errorf("the Neo4j server at %s answered the relationship query with %d values, not a relationship and two label lists", it.b.URI, len(r.Values))}, ""
	}
	cur := EncodeCursor(phaseRels, rel.ElementId)
	pos := "relationship " + rel.ElementId
	props, err := driverProperties(rel.Props)
	if err != nil {
		return pageItem{err: &migrate.BadRecordError{Position: pos, Cursor: cur, Raw: truncate(fmt.Sprint(rel.Props)), Reason: err.Error()}}, rel.ElementId
	}
	//lint:ignore SA1019 the numeric ids are the keys APOC exports use
	id, from, to := rel.Id, rel.StartId, rel.EndId
	rec := relationshipRecord(strconv.FormatInt(id, 10), rel.Type, props,
		strconv.FormatInt(from, 10), labelList(start), strconv.FormatInt(to, 10), labelList(end))
	rec.Cursor, rec.Position = cur, pos
	return pageItem{rec: rec}, rel.ElementId
}

func truncate(s string) string {
	if len(s) > 1024 {
		return s[:1024] + "…"
	}
	return s
}

// labelList is a list of labels.
func labelList(l []any) []string {
	out := make([]string, 0, len(l))
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// driverProperties converts a node's or relationship's properties.
func driverProperties(props map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(props))
	for k, v := range props {
		c, err := driverValue(v)
		if err != nil {
			return nil, fmt.Errorf("property %s: %v", k, err)
		}
		out[k] = c
	}
	return out, nil
}

// driverValue converts a property value of the driver (see Bolt).
func driverValue(v any) (any, error) {
	switch x := v.(type) {
	case nil, string, bool, int64, float64, time.Time:
		return x, nil
	case []byte:
		return base64.StdEncoding.EncodeToString(x), nil
	case dbtype.Date:
		return x.String(), nil
	case dbtype.LocalDateTime:
		return x.String(), nil
	case dbtype.LocalTime:
		return x.String(), nil
	case dbtype.Time:
		return x.String(), nil
	case dbtype.Duration:
		return isoDuration(x), nil
	case dbtype.Point2D:
		return point(x.SpatialRefId, x.X, x.Y, nil), nil
	case dbtype.Point3D:
		return point(x.SpatialRefId, x.X, x.Y, &x.Z), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			c, err := driverValue(e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			c, err := driverValue(e)
			if err != nil {
				return nil, err
			}
			out[k] = c
		}
		return out, nil
	case *dbtype.InvalidValue:
		return nil, fmt.Errorf("the driver could not read the value: %s: %v", x.Message, x.Err)
	}
	return nil, fmt.Errorf("a %T cannot be migrated", v)
}

// isoDuration writes a duration as Neo4j does (and so APOC exports):
// years and months from its months, hours, minutes and seconds from its
// seconds, zero parts left out ("P1Y2M3DT4H5M6.5S", "PT0S").
func isoDuration(d dbtype.Duration) string {
	var b strings.Builder
	b.WriteByte('P')
	part := func(n int64, unit byte) {
		if n != 0 {
			b.WriteString(strconv.FormatInt(n, 10))
			b.WriteByte(unit)
		}
	}
	part(d.Months/12, 'Y')
	part(d.Months%12, 'M')
	part(d.Days, 'D')
	secs, nanos, sign := d.Seconds, int64(d.Nanos), ""
	if secs < 0 {
		sign = "-"
		if secs = -secs; nanos > 0 {
			secs, nanos = secs-1, int64(time.Second)-nanos
		}
	}
	if secs != 0 || nanos != 0 {
		b.WriteByte('T')
		if h := secs / 3600; h != 0 {
			b.WriteString(sign + strconv.FormatInt(h, 10) + "H")
		}
		if m := secs % 3600 / 60; m != 0 {
			b.WriteString(sign + strconv.FormatInt(m, 10) + "M")
		}
		if s := secs % 60; s != 0 || nanos != 0 {
			b.WriteString(sign + strconv.FormatInt(s, 10))
			if nanos != 0 {
				b.WriteString(strings.TrimRight(fmt.Sprintf(".%09d", nanos), "0"))
			}
			b.WriteByte('S')
		}
	}
	if b.Len() == 1 {
		return "PT0S"
	}
	return b.String()
}

// point is a point as a map, named the way APOC exports name it.
func point(srid uint32, x, y float64, z *float64) map[string]any {
	var crs string
	geo := false
	switch srid {
	case 7203:
		crs = "cartesian"
	case 9157:
		crs = "cartesian-3d"
	case 4326:
		crs, geo = "wgs-84", true
	case 4979:
		crs, geo = "wgs-84-3d", true
	default:
		crs = "srid:" + strconv.FormatUint(uint64(srid), 10)
	}
	m := map[string]any{"crs": crs}
	if geo {
		m["longitude"], m["latitude"] = x, y
		if z != nil {
			m["height"] = *z
		}
		return m
	}
	m["x"], m["y"] = x, y
	if z != nil {
		m["z"] = *z
	}
	return m
}

// cursorPrefix marks (and versions) a live Neo4j cursor.
const cursorPrefix = "neo1."

// EncodeCursor is the position after the node (phase 'n') or relationship
// (phase 'r') with element id eid: opaque and stable.
func EncodeCursor(phase byte, eid string) string {
	return cursorPrefix + base64.RawURLEncoding.EncodeToString(append([]byte{phase}, eid...))
}

// DecodeCursor reads a cursor EncodeCursor wrote.
func DecodeCursor(c string) (phase byte, eid string, err error) {
	bad := func(why string) error {
		s := c
		if len(s) > 80 {
			s = s[:80] + "…"
		}
		return fmt.Errorf("neo4j cursor %q is not one this version wrote: %s", s, why)
	}
	rest, ok := strings.CutPrefix(c, cursorPrefix)
	if !ok {
		return 0, "", bad("no " + cursorPrefix + " prefix")
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(rest)
	if err != nil {
		return 0, "", bad("not base64")
	}
	if len(raw) < 2 || (raw[0] != phaseNodes && raw[0] != phaseRels) {
		return 0, "", bad("no phase and element id")
	}
	if !utf8.Valid(raw[1:]) {
		return 0, "", bad("not UTF-8")
	}
	return raw[0], string(raw[1:]), nil
}
