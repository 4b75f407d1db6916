package ops

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/engram-ops/engram-ops/ops/api"
)

// decodeJSON reads r's body into dst: the Content-Type must be JSON, the
// body at most limit bytes, one JSON value with no unknown fields and
// nothing after it. Every failure is an *httpError naming the problem.
func decodeJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	if err := checkJSONContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	return decodeBody(body, limit, dst)
}

// checkJSONContentType accepts application/json and application/*+json,
// with any parameters (charset).
func checkJSONContentType(ct string) error {
	if ct == "" {
		return httpErrorf(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
			"request has no Content-Type; send JSON with Content-Type: application/json").
			with("expected", "application/json")
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || !(mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return httpErrorf(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
			"Content-Type %q is not supported; send JSON with Content-Type: application/json", ct).
			with("expected", "application/json", "actual", ct)
	}
	return nil
}

// countingReader counts bytes read, to name offsets of truncated bodies.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// decodeBody decodes exactly one JSON value from body into dst. limit is
// only used to name the limit when body is an http.MaxBytesReader.
func decodeBody(body io.Reader, limit int64, dst any) error {
	cr := &countingReader{r: body}
	dec := json.NewDecoder(cr)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err, cr.n, limit, dst, true)
	}
	// Exactly one value: anything but EOF after it is an error.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil || errors.As(err, new(*json.SyntaxError)) {
			return httpErrorf(http.StatusBadRequest, "INVALID_JSON",
				"unexpected data after the JSON value at byte offset %d; send exactly one JSON object", dec.InputOffset()).
				with("offset", dec.InputOffset())
		}
		return jsonError(err, cr.n, limit, dst, false)
	}
	return nil
}

// jsonError translates an encoding/json (or body read) error.
func jsonError(err error, read, limit int64, dst any, first bool) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return httpErrorf(http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE",
			"request body exceeds the limit of %d bytes (limits.max_body_bytes)", mbe.Limit).
			with("limit", mbe.Limit)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return httpErrorf(http.StatusBadRequest, "INVALID_JSON", "invalid JSON at byte offset %d: %s", se.Offset, se.Error()).
			with("offset", se.Offset)
	}
	if errors.Is(err, io.EOF) && first && read == 0 {
		return httpErrorf(http.StatusBadRequest, "EMPTY_BODY", "request body is empty; send a JSON object")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return httpErrorf(http.StatusBadRequest, "INVALID_JSON",
			"JSON body ends unexpectedly at byte offset %d (truncated body?)", read).with("offset", read)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			return httpErrorf(http.StatusBadRequest, "INVALID_JSON",
				"request body must be a JSON object, got %s", te.Value).with("offset", te.Offset)
		}
		if strings.HasPrefix(te.Value, "number ") && isNumberKind(te.Type) {
			return httpErrorf(http.StatusBadRequest, "INVALID_NUMBER",
				"field %q: %s is out of range for %s (numbers must be finite and fit the type)", field, te.Value, te.Type).
				with("field", field, "offset", te.Offset)
		}
		return httpErrorf(http.StatusBadRequest, "INVALID_FIELD_TYPE",
			"field %q must be %s, got %s", field, typeName(te.Type), te.Value).
			with("field", field, "offset", te.Offset, "expected", typeName(te.Type))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		msg := "unknown field " + strconv.Quote(name)
		if known := knownFields(dst); len(known) > 0 {
			msg += "; accepted fields are: " + strings.Join(known, ", ")
		}
		return httpErrorf(http.StatusBadRequest, "UNKNOWN_FIELD", "%s", msg).with("field", name)
	}
	var pe *time.ParseError
	if errors.As(err, &pe) {
		return httpErrorf(http.StatusBadRequest, "INVALID_TIME",
			"time %s is not RFC 3339 (e.g. 2025-01-02T15:04:05Z)", pe.Value)
	}
	if strings.Contains(err.Error(), "Time.UnmarshalJSON") {
		return httpErrorf(http.StatusBadRequest, "INVALID_TIME",
			"a time field must be an RFC 3339 string such as \"2025-01-02T15:04:05Z\" (%s)", err.Error())
	}
	return httpErrorf(http.StatusBadRequest, "INVALID_JSON", "invalid request body: %s", err.Error())
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

// knownFields lists the JSON field names of dst's top-level struct.
func knownFields(dst any) []string {
	t := reflect.TypeOf(dst)
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

// params parses query parameters, collecting the first problem.
type params struct {
	v     url.Values
	err   error
	known map[string]bool
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
			"query parameter %s=%q: %s", name, truncateString(value, 80), want).with("parameter", name)
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
	v, err := api.ParseFloats(s)
	if err != nil {
		p.fail(name, s, "must be a JSON array of finite numbers, e.g. [0.1,0.2]")
		return nil
	}
	return v
}

func (p *params) list(name string) []string {
	s := p.str(name)
	if s == "" {
		return nil
	}
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// check reports the first parse problem, or an unknown parameter.
func (p *params) check() error {
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
				"unknown query parameter %q; accepted are: %s", truncateString(k, 80), strings.Join(known, ", ")).
				with("parameter", truncateString(k, 80))
		}
	}
	return nil
}

func truncateString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
