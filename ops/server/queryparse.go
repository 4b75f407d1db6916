package server

// The query language of POST /api/v1/query: a hand-written lexer and
// recursive-descent parser of Engram's RECALL and SPREAD statements
// (docs/query-language.md has the grammar). Keywords are case-insensitive.
// The parser reads untrusted bytes: it never panics, bounds what it
// builds by the input's length, and every error names its position.

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Query cost, as Engram counts it: a statement above maxQueryCost is
// refused before it runs. RECALL costs 1000 plus 100 per constraint;
// SPREAD 1000·2^min(hops, 10), so MAX_HOPS 7 or more is refused.
const (
	maxQueryCost      = 100_000
	recallBaseCost    = 1000
	constraintCost    = 100
	spreadBaseCost    = 1000
	maxQueryTextBytes = 1 << 20
)

// Defaults of the statements (Engram's).
const (
	defaultSpreadHops      = 3
	defaultSpreadDecay     = 0.1
	defaultSpreadThreshold = 0.01
	defaultVectorCueMin    = 0.8
)

// statement kinds.
const (
	stmtRecall = "RECALL"
	stmtSpread = "SPREAD"
)

// pattern kinds of RECALL and SPREAD FROM.
const (
	patternID     = "id"
	patternText   = "text"
	patternVector = "vector"
	patternAll    = "all"
)

// queryPattern is what a statement starts from.
type queryPattern struct {
	Kind      string
	ID        string
	Text      string
	Vector    []float32
	Threshold *float64 // a vector's minimum cosine similarity
}

// queryCompare is "op value" of a confidence condition.
type queryCompare struct {
	Op    string // > < >= <= =
	Value float64
}

func (c queryCompare) holds(v float64) bool {
	switch c.Op {
	case ">":
		return v > c.Value
	case "<":
		return v < c.Value
	case ">=":
		return v >= c.Value
	case "<=":
		return v <= c.Value
	}
	return v == c.Value
}

// queryConstraint is one WHERE condition.
type queryConstraint struct {
	Field string // content, created, confidence, space, tags
	Op    string // CONTAINS, BEFORE, AFTER, or a comparison
	Text  string
	Time  time.Time
	Value float64
}

// parsedQuery is one statement.
type parsedQuery struct {
	Kind        string
	Pattern     queryPattern
	Constraints []queryConstraint
	Confidence  *queryCompare // RECALL's CONFIDENCE clause: filters the results' confidence
	Limit       int           // 0: the default
	MaxHops     int
	Decay       float64
	Threshold   float64
	Cost        int
}

// queryError is a syntax error, an unsupported construct or a statement
// over the cost limit, with its position (1-based line and column).
type queryError struct {
	Code      string // QUERY_SYNTAX_ERROR, QUERY_NOT_SUPPORTED, QUERY_TOO_COMPLEX
	Message   string
	Offset    int
	Line, Col int
	Found     string
	Construct string
}

func (e *queryError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Col, e.Message)
}

// Tokens.
type tokKind uint8

const (
	tokEOF tokKind = iota
	tokWord
	tokString
	tokPunct
)

type qtoken struct {
	kind tokKind
	text string // a word, a string's value, or the punctuation
	off  int
}

func (t qtoken) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of query"
	case tokString:
		return strconv.Quote(truncateString(t.text, 40))
	}
	return strconv.Quote(truncateString(t.text, 40))
}

// isWordByte reports bytes of identifiers and numbers: letters, digits,
// _, -, ., + and : (ids, numbers with exponents, times).
func isWordByte(c byte) bool {
	return c == '_' || c == '-' || c == '.' || c == '+' || c == ':' ||
		('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

type queryParser struct {
	src  string
	toks []qtoken
	i    int
}

// lex splits src into tokens.
func lexQuery(src string) ([]qtoken, *queryError) {
	var toks []qtoken
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"' || c == '\'':
			quote := c
			var b strings.Builder
			j := i + 1
			for ; j < len(src) && src[j] != quote; j++ {
				if src[j] == '\\' && j+1 < len(src) {
					j++
				}
				b.WriteByte(src[j])
			}
			if j >= len(src) {
				return nil, syntaxError(src, i, "a string opened here is never closed", "")
			}
			toks = append(toks, qtoken{kind: tokString, text: b.String(), off: i})
			i = j + 1
		case c == '>' || c == '<':
			if i+1 < len(src) && src[i+1] == '=' {
				toks = append(toks, qtoken{kind: tokPunct, text: src[i : i+2], off: i})
				i += 2
			} else {
				toks = append(toks, qtoken{kind: tokPunct, text: src[i : i+1], off: i})
				i++
			}
		case c == '=' || c == '[' || c == ']' || c == ',' || c == '*':
			toks = append(toks, qtoken{kind: tokPunct, text: src[i : i+1], off: i})
			i++
		case isWordByte(c):
			j := i
			for j < len(src) && isWordByte(src[j]) {
				j++
			}
			toks = append(toks, qtoken{kind: tokWord, text: src[i:j], off: i})
			i = j
		default:
			r, _ := utf8.DecodeRuneInString(src[i:])
			return nil, syntaxError(src, i, fmt.Sprintf("unexpected character %q", r), string(r))
		}
	}
	return append(toks, qtoken{kind: tokEOF, off: len(src)}), nil
}

// at places e at byte offset off of src (1-based line and column).
func (e *queryError) at(src string, off int) *queryError {
	line, col := 1, 1
	for i := 0; i < off && i < len(src); {
		r, n := utf8.DecodeRuneInString(src[i:])
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += n
	}
	e.Offset, e.Line, e.Col = off, line, col
	return e
}

// syntaxError is a QUERY_SYNTAX_ERROR at byte offset off of src.
func syntaxError(src string, off int, msg, found string) *queryError {
	return (&queryError{Code: "QUERY_SYNTAX_ERROR", Message: msg, Found: found}).at(src, off)
}

// parseQuery parses one statement.
func parseQuery(src string) (*parsedQuery, *queryError) {
	if len(src) > maxQueryTextBytes {
		return nil, &queryError{Code: "QUERY_SYNTAX_ERROR", Line: 1, Col: 1,
			Message: fmt.Sprintf("the query is %d bytes, above the limit of %d", len(src), maxQueryTextBytes)}
	}
	toks, qe := lexQuery(src)
	if qe != nil {
		return nil, qe
	}
	p := &queryParser{src: src, toks: toks}
	q, qe := p.statement()
	if qe != nil {
		return nil, qe
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.errorAt(t, fmt.Sprintf("unexpected %s after the end of the %s statement", t.describe(), q.Kind))
	}
	return q, nil
}

func (p *queryParser) peek() qtoken { return p.toks[p.i] }

func (p *queryParser) next() qtoken {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *queryParser) errorAt(t qtoken, msg string) *queryError {
	found := t.text
	if t.kind == tokEOF {
		found = ""
	}
	return syntaxError(p.src, t.off, msg, found)
}

// keyword reports whether t is the keyword kw (case-insensitive).
func keyword(t qtoken, kw string) bool { return t.kind == tokWord && strings.EqualFold(t.text, kw) }

// accept consumes the keyword kw when it comes next.
func (p *queryParser) accept(kw string) bool {
	if keyword(p.peek(), kw) {
		p.i++
		return true
	}
	return false
}

func (p *queryParser) expect(kw, why string) *queryError {
	if p.accept(kw) {
		return nil
	}
	t := p.peek()
	return p.errorAt(t, fmt.Sprintf("expected %s %s, found %s", kw, why, t.describe()))
}

// unsupported are Engram's constructs this server does not run, with what
// they are.
var unsupported = map[string]string{
	"PREDICT":     "PREDICT (future state prediction)",
	"IMAGINE":     "IMAGINE (generative pattern completion; POST /api/v1/complete completes a partial episode)",
	"CONSOLIDATE": "CONSOLIDATE (consolidation into semantic memories)",
	"BASE_RATE":   "BASE_RATE (a Bayesian prior on recall)",
	"GIVEN":       "GIVEN (PREDICT's context)",
	"HORIZON":     "HORIZON (PREDICT's time horizon)",
	"NOVELTY":     "NOVELTY (IMAGINE's creativity)",
	"BASED":       "BASED ON (IMAGINE's seeds)",
	"INTO":        "INTO (CONSOLIDATE's target)",
	"SCHEDULER":   "SCHEDULER (CONSOLIDATE's policy)",
}

func (p *queryParser) unsupportedAt(t qtoken) *queryError {
	kw := strings.ToUpper(t.text)
	return (&queryError{Code: "QUERY_NOT_SUPPORTED", Found: t.text, Construct: kw,
		Message: fmt.Sprintf("%s is part of Engram's query language but not served here; supported statements are RECALL and SPREAD", unsupported[kw])}).at(p.src, t.off)
}

func (p *queryParser) statement() (*parsedQuery, *queryError) {
	t := p.next()
	switch {
	case keyword(t, stmtRecall):
		return p.recall()
	case keyword(t, stmtSpread):
		return p.spread()
	case t.kind == tokWord && unsupported[strings.ToUpper(t.text)] != "":
		return nil, p.unsupportedAt(t)
	}
	return nil, p.errorAt(t, fmt.Sprintf("expected RECALL or SPREAD, found %s", t.describe()))
}

// pattern reads a RECALL pattern or SPREAD's source: an id, a string (a
// text cue), field="text" (Engram's quickstart form; a text cue), a
// vector [f, …] [THRESHOLD t], or * (every memory, RECALL only).
func (p *queryParser) pattern(allowAll, allowVector bool) (queryPattern, *queryError) {
	t := p.next()
	switch {
	case t.kind == tokString:
		return queryPattern{Kind: patternText, Text: t.text}, nil
	case t.kind == tokPunct && t.text == "*" && allowAll:
		return queryPattern{Kind: patternAll}, nil
	case t.kind == tokPunct && t.text == "[" && allowVector:
		return p.vector()
	case t.kind == tokWord:
		if eq := p.peek(); eq.kind == tokPunct && eq.text == "=" {
			p.i++
			s := p.next()
			if s.kind != tokString {
				return queryPattern{}, p.errorAt(s, fmt.Sprintf("expected a quoted string after %s=, found %s", t.text, s.describe()))
			}
			return queryPattern{Kind: patternText, Text: s.text}, nil
		}
		if unsupported[strings.ToUpper(t.text)] != "" {
			return queryPattern{}, p.unsupportedAt(t)
		}
		return queryPattern{Kind: patternID, ID: t.text}, nil
	}
	want := "a memory id, a quoted text"
	if allowVector {
		want += ", a vector [f, …]"
	}
	if allowAll {
		want += " or *"
	}
	return queryPattern{}, p.errorAt(t, fmt.Sprintf("expected %s, found %s", want, t.describe()))
}

func (p *queryParser) vector() (queryPattern, *queryError) {
	// Each component takes at least two bytes ("0,"): the input bounds
	// the vector.
	v := make([]float32, 0, 16)
	for {
		t := p.next()
		if t.kind == tokPunct && t.text == "]" && len(v) == 0 {
			return queryPattern{}, p.errorAt(t, "the vector is empty")
		}
		f, qe := p.number(t, "a vector component")
		if qe != nil {
			return queryPattern{}, qe
		}
		if math.Abs(f) > math.MaxFloat32 {
			return queryPattern{}, p.errorAt(t, fmt.Sprintf("vector component %s does not fit a float32", t.text))
		}
		v = append(v, float32(f))
		sep := p.next()
		if sep.kind == tokPunct && sep.text == "]" {
			break
		}
		if sep.kind != tokPunct || sep.text != "," {
			return queryPattern{}, p.errorAt(sep, fmt.Sprintf("expected , or ] in the vector, found %s", sep.describe()))
		}
	}
	pat := queryPattern{Kind: patternVector, Vector: v}
	if p.accept("THRESHOLD") {
		f, qe := p.unit("THRESHOLD")
		if qe != nil {
			return pat, qe
		}
		pat.Threshold = &f
	}
	return pat, nil
}

// number reads a finite number from t.
func (p *queryParser) number(t qtoken, what string) (float64, *queryError) {
	if t.kind != tokWord {
		return 0, p.errorAt(t, fmt.Sprintf("expected a number for %s, found %s", what, t.describe()))
	}
	f, err := strconv.ParseFloat(t.text, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, p.errorAt(t, fmt.Sprintf("expected a finite number for %s, found %s", what, t.describe()))
	}
	return f, nil
}

// unit reads a number in 0..1 for the clause what.
func (p *queryParser) unit(what string) (float64, *queryError) {
	t := p.next()
	f, qe := p.number(t, what)
	if qe != nil {
		return 0, qe
	}
	if f < 0 || f > 1 {
		return 0, p.errorAt(t, fmt.Sprintf("%s %s is outside 0..1", what, t.text))
	}
	return f, nil
}

// integer reads a whole number in 0..hi for the clause what.
func (p *queryParser) integer(what string, hi int) (int, *queryError) {
	t := p.next()
	n, err := strconv.Atoi(t.text)
	if t.kind != tokWord || err != nil || n < 0 || n > hi {
		return 0, p.errorAt(t, fmt.Sprintf("expected a whole number in 0..%d for %s, found %s", hi, what, t.describe()))
	}
	return n, nil
}

func (p *queryParser) compare(what string) (queryCompare, *queryError) {
	op := p.next()
	isCmp := op.kind == tokPunct
	switch op.text {
	case ">", "<", ">=", "<=", "=":
	default:
		isCmp = false
	}
	if !isCmp {
		return queryCompare{}, p.errorAt(op, fmt.Sprintf("expected a comparison (>, <, >=, <=, =) after %s, found %s", what, op.describe()))
	}
	v, qe := p.unit(what)
	return queryCompare{Op: op.text, Value: v}, qe
}

func (p *queryParser) recall() (*parsedQuery, *queryError) {
	q := &parsedQuery{Kind: stmtRecall}
	var qe *queryError
	if q.Pattern, qe = p.pattern(true, true); qe != nil {
		return nil, qe
	}
	if p.accept("WHERE") {
		for {
			c, ok, qe := p.constraint()
			if qe != nil {
				return nil, qe
			}
			if !ok {
				break
			}
			q.Constraints = append(q.Constraints, c)
			p.accept("AND")
		}
		if len(q.Constraints) == 0 {
			t := p.peek()
			return nil, p.errorAt(t, fmt.Sprintf("expected a condition after WHERE (content CONTAINS, created BEFORE/AFTER, confidence >, tags CONTAINS, IN SPACE), found %s", t.describe()))
		}
	}
	for {
		t := p.peek()
		switch {
		case keyword(t, "CONFIDENCE") && q.Confidence == nil:
			p.i++
			c, qe := p.compare("CONFIDENCE")
			if qe != nil {
				return nil, qe
			}
			q.Confidence = &c
		case keyword(t, "LIMIT") && q.Limit == 0:
			p.i++
			n, qe := p.integer("LIMIT", 100_000)
			if qe != nil {
				return nil, qe
			}
			if n == 0 {
				return nil, p.errorAt(p.toks[p.i-1], "LIMIT must be at least 1")
			}
			q.Limit = n
		case t.kind == tokWord && unsupported[strings.ToUpper(t.text)] != "":
			return nil, p.unsupportedAt(t)
		default:
			q.Cost = recallBaseCost + constraintCost*len(q.Constraints)
			return q, checkCost(p.src, q)
		}
	}
}

// constraint reads one WHERE condition; ok is false when none starts here.
func (p *queryParser) constraint() (queryConstraint, bool, *queryError) {
	t := p.peek()
	switch {
	case keyword(t, "content"), keyword(t, "tags"), keyword(t, "tag"):
		p.i++
		field := "content"
		if !keyword(t, "content") {
			field = "tags"
		}
		if !p.accept("CONTAINS") && !p.accept("CONTAIN") {
			if op := p.peek(); field == "tags" && op.kind == tokPunct && op.text == "=" {
				p.i++
			} else {
				return queryConstraint{}, false, p.errorAt(op, fmt.Sprintf("expected CONTAINS after %s, found %s", t.text, op.describe()))
			}
		}
		s := p.next()
		if s.kind != tokString {
			return queryConstraint{}, false, p.errorAt(s, fmt.Sprintf("expected a quoted string after %s CONTAINS, found %s", t.text, s.describe()))
		}
		return queryConstraint{Field: field, Op: "CONTAINS", Text: s.text}, true, nil
	case keyword(t, "created"):
		p.i++
		op := p.next()
		if !keyword(op, "BEFORE") && !keyword(op, "AFTER") {
			return queryConstraint{}, false, p.errorAt(op, fmt.Sprintf("expected BEFORE or AFTER after created, found %s", op.describe()))
		}
		v := p.next()
		when, ok := parseQueryTime(v)
		if !ok {
			return queryConstraint{}, false, p.errorAt(v, fmt.Sprintf("expected a time (\"2024-01-01\", an RFC 3339 time or Unix seconds) after created %s, found %s", strings.ToUpper(op.text), v.describe()))
		}
		return queryConstraint{Field: "created", Op: strings.ToUpper(op.text), Time: when}, true, nil
	case keyword(t, "confidence"):
		p.i++
		c, qe := p.compare("confidence")
		return queryConstraint{Field: "confidence", Op: c.Op, Value: c.Value}, qe == nil, qe
	case keyword(t, "IN"):
		p.i++
		if qe := p.expect("SPACE", "after IN"); qe != nil {
			return queryConstraint{}, false, qe
		}
		s := p.next()
		if s.kind != tokWord && s.kind != tokString {
			return queryConstraint{}, false, p.errorAt(s, fmt.Sprintf("expected a space name after IN SPACE, found %s", s.describe()))
		}
		return queryConstraint{Field: "space", Op: "IN", Text: s.text}, true, nil
	}
	return queryConstraint{}, false, nil
}

// parseQueryTime reads a date, an RFC 3339 time or Unix seconds.
func parseQueryTime(t qtoken) (time.Time, bool) {
	if t.kind != tokString && t.kind != tokWord {
		return time.Time{}, false
	}
	if n, err := strconv.ParseInt(t.text, 10, 64); err == nil && n >= 0 && n < 1<<40 {
		return time.Unix(n, 0).UTC(), true
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if when, err := time.Parse(layout, t.text); err == nil {
			return when, true
		}
	}
	return time.Time{}, false
}

func (p *queryParser) spread() (*parsedQuery, *queryError) {
	q := &parsedQuery{Kind: stmtSpread, MaxHops: defaultSpreadHops, Decay: defaultSpreadDecay, Threshold: defaultSpreadThreshold}
	if qe := p.expect("FROM", "after SPREAD"); qe != nil {
		return nil, qe
	}
	var qe *queryError
	if q.Pattern, qe = p.pattern(false, false); qe != nil {
		return nil, qe
	}
	seen := map[string]bool{}
	for {
		t := p.peek()
		kw := strings.ToUpper(t.text)
		if kw == "HOPS" {
			kw = "MAX_HOPS" // Engram's quickstart and proto comment write HOPS
		}
		if t.kind != tokWord || seen[kw] {
			break
		}
		switch kw {
		case "MAX_HOPS":
			p.i++
			if q.MaxHops, qe = p.integer("MAX_HOPS", 65535); qe != nil {
				return nil, qe
			}
		case "DECAY":
			p.i++
			if q.Decay, qe = p.unit("DECAY"); qe != nil {
				return nil, qe
			}
		case "THRESHOLD":
			p.i++
			if q.Threshold, qe = p.unit("THRESHOLD"); qe != nil {
				return nil, qe
			}
		default:
			if unsupported[kw] != "" {
				return nil, p.unsupportedAt(t)
			}
			return nil, p.errorAt(t, fmt.Sprintf("expected MAX_HOPS, DECAY or THRESHOLD, found %s", t.describe()))
		}
		seen[kw] = true
	}
	q.Cost = spreadBaseCost << min(q.MaxHops, 10)
	return q, checkCost(p.src, q)
}

// checkCost refuses a statement above the cost limit.
func checkCost(src string, q *parsedQuery) *queryError {
	if q.Cost <= maxQueryCost {
		return nil
	}
	msg := fmt.Sprintf("the %s statement costs %d, above the limit of %d", q.Kind, q.Cost, maxQueryCost)
	if q.Kind == stmtSpread {
		msg += fmt.Sprintf(" (SPREAD costs 1000·2^hops: MAX_HOPS %d is too many, 6 is the most)", q.MaxHops)
	}
	return (&queryError{Code: "QUERY_TOO_COMPLEX", Message: msg, Construct: q.Kind}).at(src, 0)
}
