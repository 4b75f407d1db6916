// Package bolttest is a Bolt protocol test server for the live Neo4j
// source: no Neo4j server can run where engram-ops is tested, so the real
// neo4j-go-driver talks to this one instead.
//
// It listens on 127.0.0.1, does the Bolt handshake (it answers version 5.0,
// where HELLO carries the credentials and nodes carry element ids), reads
// and writes chunked PackStream messages, checks the credentials (wrong
// ones get Neo.ClientError.Security.Unauthorized), answers BEGIN, RUN,
// PULL, DISCARD, COMMIT, ROLLBACK, RESET and GOODBYE, and serves an
// in-memory graph for exactly the queries the source sends (matched by
// their text): the object queries grouped by first label or type and
// property names, and the paging queries evaluated by element id with
// $after and $limit. Element ids are "4:graph:ID" for nodes and
// "5:graph:ID" for relationships, ordered as strings (so "4:graph:10"
// comes before "4:graph:9", as such ids do on a real server).
//
// What it does not do: Cypher. Any other query fails with
// Neo.ClientError.Statement.SyntaxError.
package bolttest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/neo4j/neo4j-go-driver/v5/neo4j/dbtype"

	"github.com/engram-ops/engram-ops/migrate/neo4j"
)

// Node is a node of the graph.
type Node struct {
	ID     int64
	Labels []string
	Props  map[string]any
}

// Rel is a relationship from node Start to node End.
type Rel struct {
	ID         int64
	Type       string
	Start, End int64
	Props      map[string]any
}

// Graph is what the server serves. Property values are nil, bool, int64,
// float64, string, []byte, []any, map[string]any, time.Time (a datetime),
// and the driver's dbtype temporal and spatial values.
type Graph struct {
	Nodes []Node
	Rels  []Rel
}

// NodeElementID and RelElementID are the element ids the server gives.
func NodeElementID(id int64) string { return "4:graph:" + strconv.FormatInt(id, 10) }
func RelElementID(id int64) string  { return "5:graph:" + strconv.FormatInt(id, 10) }

// FromExport reads an APOC JSON-lines export into a graph: integers become
// int64, other numbers float64.
func FromExport(tb testing.TB, path string) *Graph {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	type end struct {
		ID string `json:"id"`
	}
	var line struct {
		Type       string         `json:"type"`
		ID         string         `json:"id"`
		Labels     []string       `json:"labels"`
		Label      string         `json:"label"`
		Properties map[string]any `json:"properties"`
		Start, End end
	}
	g := &Graph{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 64<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		line.Labels, line.Properties = nil, nil
		if err := dec.Decode(&line); err != nil {
			tb.Fatalf("%s: %v", path, err)
		}
		props, _ := number(line.Properties).(map[string]any)
		id := atoi(tb, line.ID)
		if line.Type == "node" {
			g.Nodes = append(g.Nodes, Node{ID: id, Labels: line.Labels, Props: props})
		} else {
			g.Rels = append(g.Rels, Rel{ID: id, Type: line.Label, Start: atoi(tb, line.Start.ID), End: atoi(tb, line.End.ID), Props: props})
		}
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return g
}

func atoi(tb testing.TB, s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		tb.Fatalf("id %q is not a number", s)
	}
	return n
}

func number(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = number(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = number(e)
		}
	}
	return v
}

// Server is a running test server.
type Server struct {
	User, Password string
	// Databases are the databases BEGIN accepts (besides none named).
	Databases []string

	g     *Graph
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	run   map[string]int // RUN count per query
	msg   map[byte]int   // messages received per tag
	conns map[net.Conn]bool
}

// Start serves g on 127.0.0.1 until the test ends; user and password are
// the only credentials it accepts, "neo4j" the only database.
func Start(tb testing.TB, g *Graph, user, password string) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{User: user, Password: password, Databases: []string{"neo4j"}, g: g, ln: ln, run: map[string]int{}, msg: map[byte]int{}, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.accept()
	tb.Cleanup(s.Close)
	return s
}

// URI is the server's bolt:// URI.
func (s *Server) URI() string { return "bolt://" + s.ln.Addr().String() }

// Runs is how many times query was run.
func (s *Server) Runs(query string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.run[query]
}

// Messages is how many messages of a kind ("PULL", "RESET", …) the
// server received.
func (s *Server) Messages(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tag, n := range msgNames {
		if n == name {
			return s.msg[tag]
		}
	}
	return 0
}

var msgNames = map[byte]string{msgHello: "HELLO", msgGoodbye: "GOODBYE", msgReset: "RESET", msgRun: "RUN", msgBegin: "BEGIN",
	msgCommit: "COMMIT", msgRollback: "ROLLBACK", msgDiscard: "DISCARD", msgPull: "PULL"}

// Close stops the server and closes its connections.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.serve(c)
		}()
	}
}

// Message tags.
const (
	msgHello    = 0x01
	msgGoodbye  = 0x02
	msgReset    = 0x0F
	msgRun      = 0x10
	msgBegin    = 0x11
	msgCommit   = 0x12
	msgRollback = 0x13
	msgDiscard  = 0x2F
	msgPull     = 0x3F
	msgSuccess  = 0x70
	msgRecord   = 0x71
	msgIgnored  = 0x7E
	msgFailure  = 0x7F
)

// conn is one client connection's state.
type conn struct {
	s      *Server
	r      *bufio.Reader
	w      *bufio.Writer
	failed bool    // after a FAILURE, until RESET
	rows   [][]any // the open result's rows not pulled yet
	open   bool    // a result is open
	bm     int
}

func (s *Server) serve(nc net.Conn) {
	c := &conn{s: s, r: bufio.NewReader(nc), w: bufio.NewWriter(nc)}
	var hs [20]byte
	if _, err := io.ReadFull(c.r, hs[:]); err != nil {
		return
	}
	if binary.BigEndian.Uint32(hs[:4]) != 0x6060B017 {
		return
	}
	// Answer 5.0 if any proposal's range covers it.
	ok := false
	for i := 0; i < 4; i++ {
		p := hs[4+4*i : 8+4*i]
		major, minor, back := p[3], int(p[2]), int(p[1])
		if major == 5 && minor-back <= 0 {
			ok = true
		}
	}
	if !ok {
		nc.Write([]byte{0, 0, 0, 0})
		return
	}
	if _, err := nc.Write([]byte{0, 0, 0, 5}); err != nil {
		return
	}
	authed := false
	for {
		tag, fields, err := c.readMessage()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.msg[tag]++
		s.mu.Unlock()
		if !authed {
			if tag != msgHello || len(fields) < 1 {
				c.failure("Neo.ClientError.Request.Invalid", "HELLO first")
				c.w.Flush()
				return
			}
			extra, _ := fields[0].(map[string]any)
			if extra["scheme"] != "basic" || extra["principal"] != s.User || extra["credentials"] != s.Password {
				c.failure("Neo.ClientError.Security.Unauthorized", "The client is unauthorized due to authentication failure.")
				c.w.Flush()
				return
			}
			authed = true
			c.success(map[string]any{"server": "Neo4j/5.0.0", "connection_id": "bolt-test", "hints": map[string]any{}})
			if c.w.Flush() != nil {
				return
			}
			continue
		}
		if tag == msgGoodbye {
			return
		}
		if c.failed && tag != msgReset {
			c.message(msgIgnored)
		} else if !c.handle(tag, fields) {
			c.w.Flush()
			return
		}
		if c.w.Flush() != nil {
			return
		}
	}
}

// handle answers one message; false closes the connection.
func (c *conn) handle(tag byte, fields []any) bool {
	switch tag {
	case msgReset:
		c.failed, c.open, c.rows = false, false, nil
		c.success(nil)
	case msgBegin:
		if len(fields) > 0 && !c.database(fields[0]) {
			return true
		}
		c.success(nil)
	case msgRun:
		if len(fields) < 3 {
			c.failure("Neo.ClientError.Request.Invalid", "RUN needs a query, parameters and extra")
			return true
		}
		if !c.database(fields[2]) {
			return true
		}
		query, _ := fields[0].(string)
		params, _ := fields[1].(map[string]any)
		fieldNames, rows, err := c.s.query(query, params)
		if err != nil {
			c.failure("Neo.ClientError.Statement.SyntaxError", err.Error())
			return true
		}
		c.s.mu.Lock()
		c.s.run[query]++
		c.s.mu.Unlock()
		c.rows, c.open = rows, true
		names := make([]any, len(fieldNames))
		for i, f := range fieldNames {
			names[i] = f
		}
		c.success(map[string]any{"fields": names, "t_first": int64(0)})
	case msgPull, msgDiscard:
		if !c.open {
			c.failure("Neo.ClientError.Request.Invalid", "no open result")
			return true
		}
		n := int64(-1)
		if len(fields) > 0 {
			if extra, ok := fields[0].(map[string]any); ok {
				if v, ok := extra["n"].(int64); ok {
					n = v
				}
			}
		}
		if n < 0 || n > int64(len(c.rows)) {
			n = int64(len(c.rows))
		}
		if tag == msgDiscard {
			n = int64(len(c.rows))
		}
		for _, row := range c.rows[:n] {
			if tag == msgPull {
				c.message(msgRecord, row)
			}
		}
		c.rows = c.rows[n:]
		if len(c.rows) > 0 {
			c.success(map[string]any{"has_more": true})
		} else {
			c.open = false
			c.success(map[string]any{"type": "r", "t_last": int64(0)})
		}
	case msgCommit:
		c.bm++
		c.success(map[string]any{"bookmark": "bolttest:" + strconv.Itoa(c.bm)})
	case msgRollback:
		c.success(nil)
	default:
		c.failure("Neo.ClientError.Request.Invalid", fmt.Sprintf("the test server does not serve message 0x%02X", tag))
		return false
	}
	return true
}

// database fails the request when extra names a database the server does
// not have.
func (c *conn) database(extra any) bool {
	m, _ := extra.(map[string]any)
	db, _ := m["db"].(string)
	if db == "" {
		return true
	}
	for _, d := range c.s.Databases {
		if d == db {
			return true
		}
	}
	c.failure("Neo.ClientError.Database.DatabaseNotFound", fmt.Sprintf("Graph not found: %s", db))
	return false
}

func (c *conn) success(meta map[string]any) {
	if meta == nil {
		meta = map[string]any{}
	}
	c.message(msgSuccess, meta)
}

func (c *conn) failure(code, msg string) {
	c.failed = true
	c.open, c.rows = false, nil
	c.message(msgFailure, map[string]any{"code": code, "message": msg})
}

// message writes a message of tag and fields in chunks.
func (c *conn) message(tag byte, fields ...any) {
	b := []byte{0xB0 | byte(len(fields)), tag}
	for _, f := range fields {
		b = pack(b, f)
	}
	for len(b) > 0 {
		n := min(len(b), 0xFFFF)
		c.w.Write([]byte{byte(n >> 8), byte(n)})
		c.w.Write(b[:n])
		b = b[n:]
	}
	c.w.Write([]byte{0, 0})
}

// readMessage reads one chunked message; empty messages (NOOPs) are
// skipped.
func (c *conn) readMessage() (byte, []any, error) {
	var msg []byte
	for {
		var h [2]byte
		if _, err := io.ReadFull(c.r, h[:]); err != nil {
			return 0, nil, err
		}
		n := int(binary.BigEndian.Uint16(h[:]))
		if n == 0 {
			if len(msg) == 0 {
				continue
			}
			break
		}
		start := len(msg)
		msg = append(msg, make([]byte, n)...)
		if _, err := io.ReadFull(c.r, msg[start:]); err != nil {
			return 0, nil, err
		}
	}
	u := &unpacker{b: msg}
	v, err := u.value()
	if err != nil {
		return 0, nil, err
	}
	st, ok := v.(structure)
	if !ok || len(u.b) != 0 {
		return 0, nil, errors.New("a message is one structure")
	}
	return st.tag, st.fields, nil
}

// structure is a PackStream structure the client sent.
type structure struct {
	tag    byte
	fields []any
}

// query evaluates one of the source's queries.
func (s *Server) query(q string, params map[string]any) ([]string, [][]any, error) {
	switch q {
	case neo4j.NodeObjectsQuery:
		groups := map[string]*[3]any{}
		var order []string
		for _, n := range s.g.Nodes {
			var label any
			if len(n.Labels) > 0 {
				label = n.Labels[0]
			}
			keys := sortedKeys(n.Props)
			id := fmt.Sprint(label, keys)
			if groups[id] == nil {
				groups[id] = &[3]any{label, keys, int64(0)}
				order = append(order, id)
			}
			groups[id][2] = groups[id][2].(int64) + 1
		}
		return []string{"label", "keys", "count"}, rowsOf(groups, order), nil
	case neo4j.RelObjectsQuery:
		groups := map[string]*[3]any{}
		var order []string
		for _, r := range s.g.Rels {
			keys := sortedKeys(r.Props)
			id := fmt.Sprint(r.Type, keys)
			if groups[id] == nil {
				groups[id] = &[3]any{r.Type, keys, int64(0)}
				order = append(order, id)
			}
			groups[id][2] = groups[id][2].(int64) + 1
		}
		return []string{"type", "keys", "count"}, rowsOf(groups, order), nil
	case neo4j.NodePageQuery, neo4j.RelPageQuery:
		after, ok1 := params["after"].(string)
		limit, ok2 := params["limit"].(int64)
		if !ok1 || !ok2 || limit < 0 {
			return nil, nil, fmt.Errorf("$after must be a string and $limit a non-negative integer, got %v", params)
		}
		nodes := map[int64]*Node{}
		for i := range s.g.Nodes {
			nodes[s.g.Nodes[i].ID] = &s.g.Nodes[i]
		}
		type row struct {
			eid string
			v   []any
		}
		var rows []row
		if q == neo4j.NodePageQuery {
			for _, n := range s.g.Nodes {
				if eid := NodeElementID(n.ID); eid > after {
					rows = append(rows, row{eid, []any{nodeValue(n)}})
				}
			}
		} else {
			for _, r := range s.g.Rels {
				eid := RelElementID(r.ID)
				if eid <= after {
					continue
				}
				a, b := nodes[r.Start], nodes[r.End]
				if a == nil || b == nil {
					return nil, nil, fmt.Errorf("relationship %d has a missing end", r.ID)
				}
				rows = append(rows, row{eid, []any{relValue(r), strs(a.Labels), strs(b.Labels)}})
			}
		}
		sort.Slice(rows, func(i, j int) bool { return rows[i].eid < rows[j].eid })
		rows = rows[:min(int64(len(rows)), limit)]
		out := make([][]any, len(rows))
		for i, r := range rows {
			out[i] = r.v
		}
		if q == neo4j.NodePageQuery {
			return []string{"n"}, out, nil
		}
		return []string{"r", "start", "end"}, out, nil
	}
	return nil, nil, fmt.Errorf("the test server does not know the query %q", q)
}

func rowsOf(groups map[string]*[3]any, order []string) [][]any {
	out := make([][]any, len(order))
	for i, id := range order {
		g := groups[id]
		out[i] = []any{g[0], g[1], g[2]}
	}
	return out
}

func sortedKeys(m map[string]any) []any {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strs(keys)
}

func strs(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

// node and rel are the Bolt 5 structures of a node and a relationship.
type node struct{ n Node }
type rel struct{ r Rel }

func nodeValue(n Node) any { return node{n} }
func relValue(r Rel) any   { return rel{r} }

// pack appends the PackStream encoding of v.
func pack(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, 0xC0)
	case bool:
		if x {
			return append(b, 0xC3)
		}
		return append(b, 0xC2)
	case int:
		return packInt(b, int64(x))
	case int64:
		return packInt(b, x)
	case float64:
		return binary.BigEndian.AppendUint64(append(b, 0xC1), math.Float64bits(x))
	case string:
		b = packHeader(b, len(x), 0x80, 0xD0)
		return append(b, x...)
	case []byte:
		switch n := len(x); {
		case n < 0x100:
			b = append(b, 0xCC, byte(n))
		case n < 0x10000:
			b = binary.BigEndian.AppendUint16(append(b, 0xCD), uint16(n))
		default:
			b = binary.BigEndian.AppendUint32(append(b, 0xCE), uint32(n))
		}
		return append(b, x...)
	case []any:
		b = packHeader(b, len(x), 0x90, 0xD4)
		for _, e := range x {
			b = pack(b, e)
		}
		return b
	case []string:
		return pack(b, strs(x))
	case map[string]any:
		b = packHeader(b, len(x), 0xA0, 0xD8)
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			b = pack(pack(b, k), x[k])
		}
		return b
	case node:
		return packStruct(b, 'N', x.n.ID, strs(x.n.Labels), props(x.n.Props), NodeElementID(x.n.ID))
	case rel:
		r := x.r
		return packStruct(b, 'R', r.ID, r.Start, r.End, r.Type, props(r.Props), RelElementID(r.ID), NodeElementID(r.Start), NodeElementID(r.End))
	case time.Time:
		_, off := x.Zone()
		return packStruct(b, 'I', x.Unix(), int64(x.Nanosecond()), int64(off))
	case dbtype.Date:
		t := time.Time(x)
		days := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Unix() / 86400
		return packStruct(b, 'D', days)
	case dbtype.LocalDateTime:
		t := time.Time(x)
		wall := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), time.UTC)
		return packStruct(b, 'd', wall.Unix(), int64(wall.Nanosecond()))
	case dbtype.LocalTime:
		return packStruct(b, 't', nanosOfDay(time.Time(x)))
	case dbtype.Time:
		t := time.Time(x)
		_, off := t.Zone()
		return packStruct(b, 'T', nanosOfDay(t), int64(off))
	case dbtype.Duration:
		return packStruct(b, 'E', x.Months, x.Days, x.Seconds, int64(x.Nanos))
	case dbtype.Point2D:
		return packStruct(b, 'X', int64(x.SpatialRefId), x.X, x.Y)
	case dbtype.Point3D:
		return packStruct(b, 'Y', int64(x.SpatialRefId), x.X, x.Y, x.Z)
	}
	panic(fmt.Sprintf("bolttest: cannot pack a %T", v))
}

func props(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func nanosOfDay(t time.Time) int64 {
	return int64(t.Hour())*int64(time.Hour) + int64(t.Minute())*int64(time.Minute) + int64(t.Second())*int64(time.Second) + int64(t.Nanosecond())
}

func packStruct(b []byte, tag byte, fields ...any) []byte {
	b = append(b, 0xB0|byte(len(fields)), tag)
	for _, f := range fields {
		b = pack(b, f)
	}
	return b
}

func packHeader(b []byte, n int, tiny, base byte) []byte {
	switch {
	case n < 16:
		return append(b, tiny|byte(n))
	case n < 0x100:
		return append(b, base, byte(n))
	case n < 0x10000:
		return binary.BigEndian.AppendUint16(append(b, base+1), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, base+2), uint32(n))
}

func packInt(b []byte, n int64) []byte {
	switch {
	case n >= -16 && n <= 127:
		return append(b, byte(int8(n)))
	case n >= math.MinInt8 && n <= math.MaxInt8:
		return append(b, 0xC8, byte(int8(n)))
	case n >= math.MinInt16 && n <= math.MaxInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xC9), uint16(int16(n)))
	case n >= math.MinInt32 && n <= math.MaxInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xCA), uint32(int32(n)))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xCB), uint64(n))
}

// unpacker decodes what clients send: null, booleans, integers, floats,
// strings, bytes, lists, maps and structures.
type unpacker struct{ b []byte }

var errShort = errors.New("truncated PackStream value")

func (u *unpacker) take(n int) ([]byte, error) {
	if n < 0 || len(u.b) < n {
		return nil, errShort
	}
	out := u.b[:n]
	u.b = u.b[n:]
	return out, nil
}

func (u *unpacker) size(marker, base byte) (int, error) {
	w := 1 << (marker - base) // 1, 2 or 4 bytes
	p, err := u.take(w)
	if err != nil {
		return 0, err
	}
	switch w {
	case 1:
		return int(p[0]), nil
	case 2:
		return int(binary.BigEndian.Uint16(p)), nil
	}
	return int(binary.BigEndian.Uint32(p)), nil
}

func (u *unpacker) value() (any, error) {
	m, err := u.take(1)
	if err != nil {
		return nil, err
	}
	c := m[0]
	switch {
	case c <= 0x7F:
		return int64(c), nil
	case c >= 0xF0:
		return int64(int8(c)), nil
	case c&0xF0 == 0x80:
		return u.str(int(c & 0x0F))
	case c&0xF0 == 0x90:
		return u.list(int(c & 0x0F))
	case c&0xF0 == 0xA0:
		return u.dict(int(c & 0x0F))
	case c&0xF0 == 0xB0:
		return u.structure(int(c & 0x0F))
	}
	switch c {
	case 0xC0:
		return nil, nil
	case 0xC2:
		return false, nil
	case 0xC3:
		return true, nil
	case 0xC1:
		p, err := u.take(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.BigEndian.Uint64(p)), nil
	case 0xC8:
		p, err := u.take(1)
		if err != nil {
			return nil, err
		}
		return int64(int8(p[0])), nil
	case 0xC9:
		p, err := u.take(2)
		if err != nil {
			return nil, err
		}
		return int64(int16(binary.BigEndian.Uint16(p))), nil
	case 0xCA:
		p, err := u.take(4)
		if err != nil {
			return nil, err
		}
		return int64(int32(binary.BigEndian.Uint32(p))), nil
	case 0xCB:
		p, err := u.take(8)
		if err != nil {
			return nil, err
		}
		return int64(binary.BigEndian.Uint64(p)), nil
	case 0xCC, 0xCD, 0xCE:
		n, err := u.size(c, 0xCC)
		if err != nil {
			return nil, err
		}
		p, err := u.take(n)
		return append([]byte(nil), p...), err
	case 0xD0, 0xD1, 0xD2:
		n, err := u.size(c, 0xD0)
		if err != nil {
			return nil, err
		}
		return u.str(n)
	case 0xD4, 0xD5, 0xD6:
		n, err := u.size(c, 0xD4)
		if err != nil {
			return nil, err
		}
		return u.list(n)
	case 0xD8, 0xD9, 0xDA:
		n, err := u.size(c, 0xD8)
		if err != nil {
			return nil, err
		}
		return u.dict(n)
	}
	return nil, fmt.Errorf("PackStream marker 0x%02X is not served", c)
}

func (u *unpacker) str(n int) (any, error) {
	p, err := u.take(n)
	return string(p), err
}

func (u *unpacker) list(n int) (any, error) {
	if n > len(u.b) {
		return nil, errShort
	}
	out := make([]any, n)
	for i := range out {
		v, err := u.value()
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func (u *unpacker) dict(n int) (any, error) {
	if n > len(u.b) {
		return nil, errShort
	}
	out := make(map[string]any, n)
	for i := 0; i < n; i++ {
		k, err := u.value()
		if err != nil {
			return nil, err
		}
		ks, ok := k.(string)
		if !ok {
			return nil, errors.New("a map key is not a string")
		}
		v, err := u.value()
		if err != nil {
			return nil, err
		}
		out[ks] = v
	}
	return out, nil
}

func (u *unpacker) structure(n int) (any, error) {
	t, err := u.take(1)
	if err != nil {
		return nil, err
	}
	st := structure{tag: t[0], fields: make([]any, n)}
	for i := range st.fields {
		if st.fields[i], err = u.value(); err != nil {
			return nil, err
		}
	}
	return st, nil
}
