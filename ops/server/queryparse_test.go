package server

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseQuery(t *testing.T) {
	q, qe := parseQuery(`recall "neural networks" WHERE confidence > 0.7 AND content CONTAINS "deep" created AFTER "2024-01-01" tags CONTAINS "ml" IN SPACE tenant-a CONFIDENCE >= 0.2 LIMIT 5`)
	if qe != nil {
		t.Fatal(qe)
	}
	// After WHERE, a confidence comparison is a condition (on the stored
	// confidence), not the CONFIDENCE clause.
	if q.Kind != stmtRecall || q.Pattern.Kind != patternText || q.Pattern.Text != "neural networks" || len(q.Constraints) != 6 ||
		q.Confidence != nil || q.Limit != 5 || q.Cost != 1600 {
		t.Fatalf("recall: %+v", q)
	}
	if c := q.Constraints[2]; c.Field != "created" || c.Op != "AFTER" || c.Time.Year() != 2024 {
		t.Fatalf("created: %+v", c)
	}
	if q, qe = parseQuery("RECALL x CONFIDENCE < 0.5 LIMIT 2"); qe != nil || q.Confidence == nil || q.Confidence.Op != "<" || q.Limit != 2 || q.Pattern.ID != "x" {
		t.Fatalf("confidence clause: %+v %v", q, qe)
	}
	q, qe = parseQuery("Spread From mem_1 max_hops 2 decay 0.25 threshold 0.05")
	if qe != nil || q.Kind != stmtSpread || q.Pattern.ID != "mem_1" || q.MaxHops != 2 || q.Decay != 0.25 || q.Threshold != 0.05 || q.Cost != 4000 {
		t.Fatalf("spread: %+v %v", q, qe)
	}
	q, qe = parseQuery("SPREAD FROM x")
	if qe != nil || q.MaxHops != defaultSpreadHops || q.Decay != defaultSpreadDecay || q.Threshold != defaultSpreadThreshold {
		t.Fatalf("spread defaults: %+v %v", q, qe)
	}
	// Engram's quickstart forms.
	if q, qe = parseQuery(`RECALL what="mitochondria" CONFIDENCE > 0.8`); qe != nil || q.Pattern.Kind != patternText || q.Pattern.Text != "mitochondria" {
		t.Fatalf("quickstart recall: %+v %v", q, qe)
	}
	if q, qe = parseQuery(`SPREAD FROM what="cellular biology" HOPS 2`); qe != nil || q.Pattern.Text != "cellular biology" || q.MaxHops != 2 {
		t.Fatalf("quickstart spread: %+v %v", q, qe)
	}
	if q, qe = parseQuery("RECALL [0.1, -0.2, 3e-1] THRESHOLD 0.85"); qe != nil || len(q.Pattern.Vector) != 3 || *q.Pattern.Threshold != 0.85 {
		t.Fatalf("vector: %+v %v", q, qe)
	}
	if q, qe = parseQuery("RECALL *"); qe != nil || q.Pattern.Kind != patternAll {
		t.Fatalf("all: %+v %v", q, qe)
	}

	for _, c := range []struct {
		src, code     string
		line, col     int
		found, inText string
	}{
		{"SPREAD FROM a MAX_HOPS 7", "QUERY_TOO_COMPLEX", 1, 1, "", "128000"},
		{"PREDICT x GIVEN y", "QUERY_NOT_SUPPORTED", 1, 1, "PREDICT", "PREDICT"},
		{"RECALL x\n  BASE_RATE 0.3", "QUERY_NOT_SUPPORTED", 2, 3, "BASE_RATE", "BASE_RATE"},
		{"  imagine x", "QUERY_NOT_SUPPORTED", 1, 3, "imagine", "IMAGINE"},
		{"CONSOLIDATE x INTO y", "QUERY_NOT_SUPPORTED", 1, 1, "CONSOLIDATE", "CONSOLIDATE"},
		{"RECALL ,", "QUERY_SYNTAX_ERROR", 1, 8, ",", "expected a memory id"},
		{"RECALL x WHERE", "QUERY_SYNTAX_ERROR", 1, 15, "", "condition after WHERE"},
		{"RECALL x WHERE confidence ~ 1", "QUERY_SYNTAX_ERROR", 1, 27, "~", "unexpected character"},
		{"RECALL x CONFIDENCE > 2", "QUERY_SYNTAX_ERROR", 1, 23, "2", "outside 0..1"},
		{`RECALL "open`, "QUERY_SYNTAX_ERROR", 1, 8, "", "never closed"},
		{"SPREAD x", "QUERY_SYNTAX_ERROR", 1, 8, "x", "expected FROM"},
		{"SPREAD FROM a HOPS 2 HOPS 3", "QUERY_SYNTAX_ERROR", 1, 22, "HOPS", "after the end"},
		{"RECALL [] ", "QUERY_SYNTAX_ERROR", 1, 9, "]", "empty"},
		{"RECALL x LIMIT 5 LIMIT 6", "QUERY_SYNTAX_ERROR", 1, 18, "LIMIT", "after the end"},
		{"SELECT *", "QUERY_SYNTAX_ERROR", 1, 1, "SELECT", "expected RECALL or SPREAD"},
	} {
		_, qe := parseQuery(c.src)
		if qe == nil {
			t.Errorf("%q parsed", c.src)
			continue
		}
		if qe.Code != c.code || qe.Line != c.line || qe.Col != c.col || qe.Found != c.found || !strings.Contains(qe.Message, c.inText) {
			t.Errorf("%q: %s %+v; want %s at %d:%d found %q, message with %q", c.src, qe.Code, qe, c.code, c.line, c.col, c.found, c.inText)
		}
	}
}

// FuzzParseQuery feeds arbitrary text to the query parser: it never
// panics, an error has a known code and a position inside the text, and a
// parsed statement is within the cost limit with its defaults in range.
func FuzzParseQuery(f *testing.F) {
	for _, seed := range []string{
		`RECALL "x" WHERE confidence > 0.5 content CONTAINS "a" created BEFORE 1704067200 IN SPACE s LIMIT 3`,
		`SPREAD FROM a MAX_HOPS 6 DECAY 0 THRESHOLD 1`,
		`RECALL [1, 2e3, -0.5] THRESHOLD 0.1 CONFIDENCE <= 0.3`,
		`RECALL what="x"`, `recall *`, `PREDICT a GIVEN b, c`, "RECALL \"a\\\"b\"", "RECALL 'x'\n\n WHERE tags = \"t\"",
		`RECALL [`, `SPREAD FROM`, "\xff", `RECALL x WHERE created AFTER "2024-01-01T00:00:00Z"`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, src string) {
		q, qe := parseQuery(src)
		if qe != nil {
			switch qe.Code {
			case "QUERY_SYNTAX_ERROR", "QUERY_NOT_SUPPORTED", "QUERY_TOO_COMPLEX":
			default:
				t.Fatalf("unknown code %q", qe.Code)
			}
			if qe.Offset < 0 || qe.Offset > len(src) || qe.Line < 1 || qe.Col < 1 || qe.Line > strings.Count(src, "\n")+1 {
				t.Fatalf("position %d (%d:%d) outside %d bytes", qe.Offset, qe.Line, qe.Col, len(src))
			}
			if msg := queryErr(qe).Error(); len(msg) > 1000 || !utf8.ValidString(msg) && utf8.ValidString(src) {
				t.Fatalf("message: %q", msg)
			}
			return
		}
		if q.Cost > maxQueryCost || q.Kind != stmtRecall && q.Kind != stmtSpread {
			t.Fatalf("parsed %+v", q)
		}
		if q.Decay < 0 || q.Decay > 1 || q.Threshold < 0 || q.Threshold > 1 || q.MaxHops > 6 {
			t.Fatalf("out of range: %+v", q)
		}
		if len(q.Pattern.Vector) > len(src) {
			t.Fatalf("vector of %d from %d bytes", len(q.Pattern.Vector), len(src))
		}
	})
}
