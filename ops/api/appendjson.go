package api

import (
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Recall is the server's costliest response to encode: encoding/json's reflection took
// ~34 µs to write one with ten memories, a tenth of what the server spent per
// recall outside the search. AppendJSON writes the same bytes directly; a
// differential test holds it to encoding/json field for field. Remember's
// response, the most frequent, has one too.

// AppendJSON appends r exactly as encoding/json's Encoder writes it,
// newline included. It reports false, with b as it was, for what only
// encoding/json can report as an error (a NaN or infinite float, a time
// outside years 0–9999): the caller then falls back to encoding/json.
func (r RecallResponse) AppendJSON(b []byte) ([]byte, bool) {
	a := jsonAppender{b: b, ok: true}
	a.raw(`{"memories":{"vivid":`)
	a.recalled(r.Memories.Vivid)
	a.raw(`,"associated":`)
	a.recalled(r.Memories.Associated)
	a.raw(`,"reconstructed":`)
	a.recalled(r.Memories.Reconstructed)
	a.raw(`},"recall_confidence":`)
	a.confidence(&r.RecallConfidence)
	q := &r.QueryAnalysis
	a.raw(`,"query_analysis":{"understood_intent":`)
	a.str(q.UnderstoodIntent)
	a.raw(`,"search_strategy":`)
	a.str(q.SearchStrategy)
	a.raw(`,"cognitive_load":`)
	a.str(q.CognitiveLoad)
	a.raw(`,"suggestions":`)
	a.strs(q.Suggestions)
	m := &r.Metadata
	a.raw(`},"metadata":{"took_ms":`)
	a.float(m.TookMS)
	a.raw(`,"total_memories_searched":`)
	a.int(m.TotalMemoriesSearched)
	a.raw(`,"activated":`)
	a.int(m.Activated)
	a.raw(`,"mode":`)
	a.str(m.Mode)
	a.raw(`,"space":`)
	a.str(m.Space)
	a.raw(`,"deep":`)
	a.bool(m.Deep)
	a.raw(`,"returned":`)
	a.int(m.Returned)
	a.raw(`},"system_message":`)
	a.str(r.SystemMessage)
	a.raw("}\n")
	if !a.ok {
		return b, false
	}
	return a.b, true
}

// AppendJSON appends r as encoding/json's Encoder writes it; see
// RecallResponse.AppendJSON. Remember is the hottest write.
func (r RememberResponse) AppendJSON(b []byte) ([]byte, bool) {
	a := jsonAppender{b: b, ok: true}
	a.raw(`{"memory_id":`)
	a.str(r.MemoryID)
	a.raw(`,"storage_confidence":`)
	a.confidence(&r.StorageConfidence)
	a.raw(`,"consolidation_state":`)
	a.str(r.ConsolidationState)
	a.raw(`,"observed_at":`)
	a.time(r.ObservedAt)
	a.raw(`,"stored_at":`)
	a.time(r.StoredAt)
	a.raw(`,"links":{"self":`)
	a.str(r.Links.Self)
	a.raw(`},"auto_links":`)
	if r.AutoLinks == nil {
		a.raw("null")
	} else {
		a.b = append(a.b, '[')
		for i, l := range r.AutoLinks {
			if i > 0 {
				a.b = append(a.b, ',')
			}
			a.raw(`{"target_memory_id":`)
			a.str(l.TargetMemoryID)
			a.raw(`,"similarity_score":`)
			a.float(l.SimilarityScore)
			a.b = append(a.b, '}')
		}
		a.b = append(a.b, ']')
	}
	a.raw(`,"created":`)
	a.bool(r.Created)
	a.raw(`,"sequence":`)
	a.b = strconv.AppendUint(a.b, r.Sequence, 10)
	a.raw(`,"space":`)
	a.str(r.Space)
	a.raw(`,"system_message":`)
	a.str(r.SystemMessage)
	a.raw("}\n")
	if !a.ok {
		return b, false
	}
	return a.b, true
}

func (a *jsonAppender) recalled(ms []RecalledMemory) {
	if ms == nil {
		a.raw("null")
		return
	}
	a.b = append(a.b, '[')
	for i := range ms {
		if i > 0 {
			a.b = append(a.b, ',')
		}
		m := &ms[i]
		a.raw(`{"id":`)
		a.str(m.ID)
		a.raw(`,"content":`)
		a.str(m.Content)
		a.raw(`,"confidence":`)
		a.confidence(&m.Confidence)
		a.raw(`,"activation_level":`)
		a.float(m.ActivationLevel)
		a.raw(`,"similarity_score":`)
		a.float(m.SimilarityScore)
		a.raw(`,"retrievability":`)
		a.float(m.Retrievability)
		a.raw(`,"stored_confidence":`)
		a.float(m.StoredConfidence)
		a.raw(`,"retrieval_path":`)
		a.str(m.RetrievalPath)
		if len(m.Path) > 0 {
			a.raw(`,"path":`)
			a.strs(m.Path)
		}
		a.raw(`,"observed_at":`)
		a.time(m.ObservedAt)
		a.raw(`,"last_access":`)
		a.time(m.LastAccess)
		a.raw(`,"tags":`)
		a.strs(m.Tags)
		a.raw(`,"memory_type":`)
		a.str(m.MemoryType)
		a.raw(`,"tier":`)
		a.str(m.Tier)
		a.raw(`,"relevance_explanation":`)
		a.str(m.RelevanceExplanation)
		if len(m.Metadata) > 0 {
			a.raw(`,"metadata":{`)
			keys := make([]string, 0, len(m.Metadata))
			for k := range m.Metadata {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			for j, k := range keys {
				if j > 0 {
					a.b = append(a.b, ',')
				}
				a.str(k)
				a.b = append(a.b, ':')
				a.str(m.Metadata[k])
			}
			a.b = append(a.b, '}')
		}
		a.b = append(a.b, '}')
	}
	a.b = append(a.b, ']')
}

func (a *jsonAppender) confidence(c *Confidence) {
	a.raw(`{"value":`)
	a.float(c.Value)
	a.raw(`,"category":`)
	a.str(c.Category)
	a.raw(`,"reasoning":`)
	a.str(c.Reasoning)
	a.b = append(a.b, '}')
}

// jsonAppender writes JSON values as encoding/json does with its defaults
// (HTML-safe strings). ok turns false on a value encoding/json refuses.
type jsonAppender struct {
	b  []byte
	ok bool
}

func (a *jsonAppender) raw(s string) { a.b = append(a.b, s...) }

func (a *jsonAppender) int(i int) { a.b = strconv.AppendInt(a.b, int64(i), 10) }

func (a *jsonAppender) bool(v bool) { a.b = strconv.AppendBool(a.b, v) }

// float is encoding/json's float64 form: like ES6, 'f' between 1e-6 and
// 1e21 and 'e' outside, with a one-digit negative exponent unpadded.
func (a *jsonAppender) float(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		a.ok = false
		return
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	a.b = strconv.AppendFloat(a.b, f, format, -1, 64)
	if format == 'e' {
		if n := len(a.b); n >= 4 && a.b[n-4] == 'e' && a.b[n-3] == '-' && a.b[n-2] == '0' {
			a.b[n-2] = a.b[n-1]
			a.b = a.b[:n-1]
		}
	}
}

// time is time.Time's MarshalJSON: quoted RFC 3339 with nanoseconds, which
// it refuses outside years 0–9999 or with a zone offset of a day or more.
func (a *jsonAppender) time(t time.Time) {
	_, offset := t.Zone()
	if y := t.Year(); y < 0 || y > 9999 || offset <= -24*3600 || offset >= 24*3600 {
		a.ok = false
		return
	}
	a.b = append(a.b, '"')
	a.b = t.AppendFormat(a.b, time.RFC3339Nano)
	a.b = append(a.b, '"')
}

// strs is a []string: null when nil.
func (a *jsonAppender) strs(ss []string) {
	if ss == nil {
		a.raw("null")
		return
	}
	a.b = append(a.b, '[')
	for i, s := range ss {
		if i > 0 {
			a.b = append(a.b, ',')
		}
		a.str(s)
	}
	a.b = append(a.b, ']')
}

// str is encoding/json's HTML-safe string: <, > and & as \u escapes,
// invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func (a *jsonAppender) str(s string) {
	b := append(a.b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	a.b = append(b, '"')
}

const hexDigits = "0123456789abcdef"
