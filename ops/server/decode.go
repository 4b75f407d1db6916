package server

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// decodeJSON reads r's body into dst: the Content-Type must be JSON, the
// body at most limit bytes, one JSON value with no unknown fields and
// nothing after it. Every failure is an *httpError naming the problem.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	ct, err := singleHeader(r, "Content-Type")
	if err != nil {
		return err
	}
	if err := checkJSONContentType(ct); err != nil {
		return err
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	return decodeBodyOf(r, body, dst)
}

// checkJSONContentType accepts application/json and application/*+json,
// with any parameters (charset).
func checkJSONContentType(ct string) error {
	if ct == "" {
		return httpErrorf(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
			"request has no Content-Type; send JSON with Content-Type: application/json").
			with("expected", "application/json")
	}
	if ct == "application/json" { // nearly every request; ParseMediaType allocates
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !(mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return httpErrorf(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
			"Content-Type %q is not supported; send JSON with Content-Type: application/json", echo(ct)).
			with("expected", "application/json", "actual", echo(ct))
	}
	return nil
}

// bodyBufs holds request-body buffers: a recall body with a 768-number cue
// is ~9 KB, and growing a fresh buffer for each was the largest allocation
// of a recall.
var bodyBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// decodeBody decodes exactly one JSON value from body into dst. The body
// is read whole (an http.MaxBytesReader's limit is named when exceeded),
// then parsed in one pass without copying it.
func decodeBody(body io.Reader, dst any) error { return decodeBodyOf(nil, body, dst) }

// decodeBodyOf is decodeBody for the body of r (nil when there is no
// request), which names the read timeout and the declared length when the
// body cannot be read.
func decodeBodyOf(r *http.Request, body io.Reader, dst any) error {
	buf := bodyBufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= 1<<20 {
			bodyBufs.Put(buf)
		}
	}()
	if _, err := buf.ReadFrom(body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return httpErrorf(http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE",
				"request body exceeds the limit of %d bytes (limits.max_body_bytes)", mbe.Limit).
				with("limit", mbe.Limit)
		}
		return bodyReadError(r, err, buf.Len())
	}
	if buf.Len() == 0 {
		return httpErrorf(http.StatusBadRequest, "EMPTY_BODY", "request body is empty; send a JSON object")
	}
	if err := json.Unmarshal(buf.Bytes(), dst, decodeOptions); err != nil {
		return jsonError(err, dst)
	}
	return nil
}

// bodyReadError says why the body of r could not be read after received
// bytes, in the client's terms: a timeout, the connection closed or reset.
// The error's own text is not used where it names socket addresses.
func bodyReadError(r *http.Request, err error, received int) error {
	of := ""
	if r != nil && r.ContentLength > 0 {
		of = " of " + strconv.FormatInt(r.ContentLength, 10)
	}
	var reason string
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		reason = "timed out"
		if srv, ok := serverOf(r); ok && srv.ReadTimeout > 0 {
			reason += " after " + srv.ReadTimeout.String() + " (server.read_timeout, counted from the start of the request)"
		}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		reason = "the connection was closed by the client"
	case errors.Is(err, syscall.ECONNRESET):
		reason = "the connection was reset by the client"
	default:
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Err != nil {
			err = oe.Err // without the addresses
		}
		reason = echo(err.Error())
	}
	return httpErrorf(http.StatusBadRequest, "BODY_READ_FAILED",
		"the request body could not be read: %s; %d%s bytes had arrived", reason, received, of).
		with("received_bytes", received)
}

// serverOf is the http.Server serving r, if any.
func serverOf(r *http.Request) (*http.Server, bool) {
	if r == nil {
		return nil, false
	}
	srv, ok := r.Context().Value(http.ServerContextKey).(*http.Server)
	return srv, ok && srv != nil
}

// jsonError translates an encoding/json/v2 error into a 400 naming the
// problem, the field (as a path such as memories[3].embedding) and the
// byte offset.
func jsonError(err error, dst any) error {
	var se *jsontext.SyntacticError
	if errors.As(err, &se) {
		switch {
		case errors.Is(se.Err, io.ErrUnexpectedEOF):
			return httpErrorf(http.StatusBadRequest, "INVALID_JSON",
				"JSON body ends unexpectedly at byte offset %d (truncated body?)", se.ByteOffset).with("offset", se.ByteOffset)
		case errors.Is(se.Err, jsontext.ErrDuplicateName):
			field := fieldPath(se.JSONPointer)
			return httpErrorf(http.StatusBadRequest, "DUPLICATE_FIELD",
				"field %q appears twice (byte offset %d); send each field once", field, se.ByteOffset).
				with("field", field, "offset", se.ByteOffset)
		case se.Err != nil && strings.Contains(se.Err.Error(), "after top-level value"):
			return httpErrorf(http.StatusBadRequest, "INVALID_JSON",
				"unexpected data after the JSON value at byte offset %d; send exactly one JSON object", se.ByteOffset).
				with("offset", se.ByteOffset)
		}
		msg := "invalid JSON at byte offset %d: %v"
		args := []any{se.ByteOffset, se.Err}
		if field := fieldPath(se.JSONPointer); field != "" {
			msg += " (in field %q)"
			args = append(args, field)
		}
		return httpErrorf(http.StatusBadRequest, "INVALID_JSON", msg, args...).with("offset", se.ByteOffset)
	}
	var sem *json.SemanticError
	if !errors.As(err, &sem) {
		return httpErrorf(http.StatusBadRequest, "INVALID_JSON", "invalid request body: %s", echo(err.Error()))
	}
	field := fieldPath(sem.JSONPointer)
	if errors.Is(sem.Err, json.ErrUnknownName) {
		name := sem.JSONPointer.LastToken()
		msg := "unknown field " + strconv.Quote(echo(name))
		if parent := fieldPath(sem.JSONPointer.Parent()); parent != "" {
			msg += " in " + parent
		}
		if known := knownFields(sem.GoType); len(known) > 0 {
			msg += "; accepted fields are: " + strings.Join(known, ", ")
		}
		return httpErrorf(http.StatusBadRequest, "UNKNOWN_FIELD", "%s", msg).with("field", echo(name))
	}
	// An embedding string that is not base64 of finite float32s.
	if sem.GoType == vectorType && sem.JSONKind == '"' && sem.Err != nil {
		return httpErrorf(http.StatusBadRequest, "INVALID_FIELD_TYPE",
			"field %q must be an array of numbers or a base64 string of little-endian float32s; the string is %s", field, echo(sem.Err.Error())).
			with("field", field, "offset", sem.ByteOffset, "expected", "an array")
	}
	if sem.GoType == reflect.TypeFor[time.Time]() {
		if pe := (*time.ParseError)(nil); errors.As(sem.Err, &pe) {
			return httpErrorf(http.StatusBadRequest, "INVALID_TIME",
				"field %q: time %q is not RFC 3339 (e.g. 2025-01-02T15:04:05Z)", field, echo(pe.Value)).with("field", field)
		}
		return httpErrorf(http.StatusBadRequest, "INVALID_TIME",
			"field %q must be an RFC 3339 time string such as \"2025-01-02T15:04:05Z\", got %s", field, kindName(sem.JSONKind)).
			with("field", field)
	}
	if field == "" {
		return httpErrorf(http.StatusBadRequest, "INVALID_JSON",
			"request body must be a JSON object, got %s", kindName(sem.JSONKind)).with("offset", sem.ByteOffset)
	}
	if sem.JSONKind == '0' && isNumberKind(sem.GoType) {
		return httpErrorf(http.StatusBadRequest, "INVALID_NUMBER",
			"field %q: %s does not fit %s (numbers must be finite and fit the type; integers must be whole)", field, echo(string(sem.JSONValue)), sem.GoType).
			with("field", field, "offset", sem.ByteOffset)
	}
	return httpErrorf(http.StatusBadRequest, "INVALID_FIELD_TYPE",
		"field %q must be %s, got %s", field, typeName(sem.GoType), kindName(sem.JSONKind)).
		with("field", field, "offset", sem.ByteOffset, "expected", typeName(sem.GoType))
}

// fieldPath renders a JSON pointer as the path a client wrote:
// /memories/3/embedding is memories[3].embedding. A path longer than
// maxEcho (a deeply nested body) is cut, see echo.
func fieldPath(p jsontext.Pointer) string {
	var b strings.Builder
	for tok := range p.Tokens() {
		if _, err := strconv.ParseUint(tok, 10, 64); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return echo(b.String())
}

// kindName names a JSON kind for an error message.
func kindName(k jsontext.Kind) string {
	switch k {
	case 'n':
		return "null"
	case 'f', 't':
		return "a boolean"
	case '"':
		return "a string"
	case '0':
		return "a number"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "a value"
}

func isNumberKind(t reflect.Type) bool {
	if t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return true
	}
	return false
}

func typeName(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map:
		return "an object"
	case reflect.Struct:
		if t == reflect.TypeFor[time.Time]() {
			return "an RFC 3339 time string"
		}
		return "an object"
	case reflect.Pointer:
		return typeName(t.Elem())
	}
	return t.String()
}

var knownFieldsCache sync.Map // reflect.Type → []string

// knownFields lists the JSON field names of struct type t.
func knownFields(t reflect.Type) []string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	if v, ok := knownFieldsCache.Load(t); ok {
		return v.([]string)
	}
	var out []string
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name := strings.Split(f.Tag.Get("json"), ",")[0]
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if name == "-" || !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			out = append(out, name)
		}
	}
	walk(t)
	sort.Strings(out)
	knownFieldsCache.Store(t, out)
	return out
}

// params parses query parameters, collecting the first problem. Every
// parameter is single-valued (a repeat is refused rather than silently
// dropped) except the lists read with list, whose repeats are joined.
type params struct {
	v     url.Values
	err   error
	known map[string]bool
	multi map[string]bool
}

func newParams(r *http.Request, known ...string) *params {
	p := &params{v: r.URL.Query(), known: map[string]bool{"space": true}}
	for _, k := range known {
		p.known[k] = true
	}
	return p
}

func (p *params) fail(name, value, want string) {
	if p.err == nil {
		p.err = httpErrorf(http.StatusBadRequest, "INVALID_PARAMETER",
			"query parameter %s=%q: %s", name, echo(value), want).with("parameter", name)
	}
}

func (p *params) str(name string) string { return strings.TrimSpace(p.v.Get(name)) }

func (p *params) int(name string, def int) int {
	s := p.str(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		p.fail(name, s, "must be a non-negative integer")
		return def
	}
	return n
}

func (p *params) float(name string) float64 {
	s := p.str(name)
	if s == "" {
		return 0
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		p.fail(name, s, "must be a finite number")
		return 0
	}
	return f
}

func (p *params) bool(name string) bool {
	s := p.str(name)
	if s == "" {
		return false
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		p.fail(name, s, "must be true or false")
	}
	return b
}

func (p *params) time(name string) *time.Time {
	s := p.str(name)
	if s == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		p.fail(name, s, "must be an RFC 3339 time such as 2025-01-02T15:04:05Z")
		return nil
	}
	return &t
}

func (p *params) floats(name string) []float32 {
	s := p.str(name)
	if s == "" {
		return nil
	}
	v, err := parseFloats(s)
	if err != nil {
		p.fail(name, s, "must be a JSON array of finite numbers, e.g. [0.1,0.2]")
		return nil
	}
	return v
}

// list reads a comma-separated list; the parameter may be repeated
// (tags=a&tags=b is tags=a,b).
func (p *params) list(name string) []string {
	if p.multi == nil {
		p.multi = map[string]bool{}
	}
	p.multi[name] = true
	var out []string
	for _, s := range p.v[name] {
		for _, x := range strings.Split(s, ",") {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
	}
	return out
}

// check reports a repeated parameter, the first parse problem, or an
// unknown parameter.
func (p *params) check() error {
	for k, vs := range p.v {
		if len(vs) > 1 && p.known[k] && !p.multi[k] {
			return duplicateParameter(k, len(vs))
		}
	}
	if p.err != nil {
		return p.err
	}
	for k := range p.v {
		if !p.known[k] {
			known := make([]string, 0, len(p.known))
			for n := range p.known {
				known = append(known, n)
			}
			sort.Strings(known)
			return httpErrorf(http.StatusBadRequest, "UNKNOWN_PARAMETER",
				"unknown query parameter %q; accepted are: %s", echo(k), strings.Join(known, ", ")).
				with("parameter", echo(k))
		}
	}
	return nil
}

func duplicateParameter(name string, n int) error {
	return httpErrorf(http.StatusBadRequest, "DUPLICATE_PARAMETER",
		"query parameter %s appears %d times; send it once", name, n).with("parameter", name)
}

// singleHeader is the value of header name, which may be sent at most once.
func singleHeader(r *http.Request, name string) (string, error) {
	vs := r.Header.Values(name)
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", httpErrorf(http.StatusBadRequest, "DUPLICATE_HEADER",
		"header %s appears %d times; send it once", name, len(vs)).with("header", name)
}

// truncateString cuts s to at most n bytes, at a rune boundary, marking
// the cut with "…".
func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:runeStart(s, n)] + "…"
}

// maxEcho bounds how much of one client-supplied value (a field path, a
// name, a parameter) an error message repeats.
const maxEcho = 256

// echo is s as an error message repeats it: whole up to maxEcho bytes,
// otherwise its first maxEcho bytes (cut at a rune boundary) and its
// length, e.g. "0[0][0]…(29998 bytes)".
func echo(s string) string {
	if len(s) <= maxEcho {
		return s
	}
	return s[:runeStart(s, maxEcho)] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// runeStart is the largest i <= n that does not split a UTF-8 sequence
// of s (n itself when s[n] starts a rune or is not UTF-8).
func runeStart(s string, n int) int {
	for i := n; i > 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			return i
		}
	}
	return n
}
