// Package client is a typed Go client of engram-ops' REST API, used by
// loadtest, tui, migrate (online mode) and the end-to-end tests.
//
// One Client is safe for concurrent use and meant to be long-lived: it keeps
// one *http.Client (keep-alive connection pool), reuses encoding buffers,
// and drains response bodies so connections are reused. Errors returned by
// the server decode into *APIError with the status and the envelope's code,
// message and details.
//
// The request and response types are ops/api's, shared with the server so
// the shapes cannot drift. This package imports only ops/api, the JSON
// library the server uses (go-json-experiment/json) and the standard
// library — never core, ops, Prometheus or cobra.
package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/api/apijson"
)

// Client talks to one engram-ops server.
type Client struct {
	base  string // scheme://host[:port][/prefix], no trailing slash
	hc    *http.Client
	space string
	token string
	ua    string
	stale bool
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient uses hc for every request (timeouts, TLS, transport). The
// default is a client with a keep-alive pool sized for load generation and
// no overall timeout (use contexts).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithSpace sends X-Memory-Space: space with every request.
func WithSpace(space string) Option { return func(c *Client) { c.space = space } }

// WithToken sends Authorization: Bearer token with every request.
func WithToken(token string) Option { return func(c *Client) { c.token = token } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.ua = ua } }

// WithReadStale sends X-Engram-Read-Stale: allow with every request, so that
// a router (engram-ops placement haproxy) may send reads to a follower.
func WithReadStale() Option { return func(c *Client) { c.stale = true } }

// DefaultTransport returns the transport New uses when no HTTP client is
// given: keep-alive with a large idle pool per host.
func DefaultTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   1024, // as many as MaxIdleConns: fewer makes many concurrent callers redial
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
}

// New returns a client of the server at baseURL ("http://127.0.0.1:7432").
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q must be http(s)://host[:port]", baseURL)
	}
	c := &Client{base: strings.TrimRight(u.String(), "/"), ua: "engram-ops-client"}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: DefaultTransport()}
	}
	return c, nil
}

// WithSpace returns a copy of c that targets space; the copy shares the
// connection pool.
func (c *Client) WithSpace(space string) *Client {
	cp := *c
	cp.space = space
	return &cp
}

// CurrentSpace is the space c sends (empty: the server's default).
func (c *Client) CurrentSpace() string { return c.space }

// BaseURL is the server's base URL.
func (c *Client) BaseURL() string { return c.base }

// APIError is an error response of the server.
type APIError struct {
	Status     int            // HTTP status
	Code       string         // envelope code, e.g. INVALID_CONFIDENCE
	Message    string         // envelope message
	Details    map[string]any // envelope details
	RetryAfter time.Duration  // from Retry-After, when sent (503, 429)

	raw []byte // the body of a 503, for health reports
}

func (e *APIError) Error() string {
	return fmt.Sprintf("engram: %d %s: %s", e.Status, e.Code, e.Message)
}

// StatusOf returns the HTTP status of an *APIError in err's chain, or 0.
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// CodeOf returns the envelope code of an *APIError in err's chain, or "".
func CodeOf(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Code
	}
	return ""
}

// IsNotFound reports whether err is a 404 from the server.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// Retryable reports whether err is worth retrying: the server said it was
// unavailable or rate limited (or a gateway failed), or the request failed
// in transport. Writes are not idempotent unless they carry an id.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	switch StatusOf(err) {
	case 0:
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return false
		}
		// Transport failures (refused, reset, closed mid-response) are
		// retryable; a response that did not decode is not.
		var ne net.Error
		return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
	case http.StatusServiceUnavailable, http.StatusTooManyRequests, http.StatusBadGateway, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// EncodeVectorBase64 is the compact form of an embedding the server also
// accepts in place of an array of numbers: the standard base64 of its
// components as little-endian IEEE 754 float32s (OpenAI's
// encoding_format=base64).
func EncodeVectorBase64(v []float32) string {
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// FormatFloats renders v as a JSON array, the form the GET recall endpoint
// takes its embedding parameter in.
func FormatFloats(v []float32) string {
	b := make([]byte, 0, len(v)*10+2)
	b = append(b, '[')
	for i, f := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(f), 'g', -1, 32)
	}
	return string(append(b, ']'))
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// do sends one request. in (if not nil) is encoded as JSON, or sent as is
// when it is a RecallBody; a 2xx response
// is decoded into out (if not nil); anything else becomes *APIError.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) (int, error) {
	var body io.Reader
	var buf *bytes.Buffer
	if pre, ok := in.(RecallBody); ok {
		body = bytes.NewReader(pre.b)
	} else if in != nil {
		buf = bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		defer func() {
			if buf.Cap() <= 4<<20 {
				bufPool.Put(buf)
			}
		}()
		if err := apijson.Encode(buf, in); err != nil {
			return 0, fmt.Errorf("encode %s %s request: %w", method, path, err)
		}
		body = bytes.NewReader(buf.Bytes())
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	ra, _ := out.(*rawAnswer)
	if ra != nil && ra.accept != "" {
		req.Header.Set("Accept", ra.accept)
	}
	if c.ua != "" {
		req.Header.Set("User-Agent", c.ua)
	}
	if c.space != "" {
		req.Header.Set(api.HeaderSpace, c.space)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.stale {
		req.Header.Set(api.HeaderReadStale, api.ReadStaleAllow)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() {
		// Drain a bounded remainder so the connection is reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
	}()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, decodeError(resp)
	}
	if out == nil {
		return resp.StatusCode, nil
	}
	if w, ok := out.(*[]byte); ok {
		b, err := io.ReadAll(resp.Body)
		*w = b
		return resp.StatusCode, err
	}
	if ra != nil {
		ra.contentType = resp.Header.Get("Content-Type")
		b, err := io.ReadAll(io.LimitReader(resp.Body, ra.limit+1))
		if err == nil && int64(len(b)) > ra.limit {
			return resp.StatusCode, fmt.Errorf("%s %s: answer larger than %d bytes", method, path, ra.limit)
		}
		ra.body = b
		return resp.StatusCode, err
	}
	var opts []json.Options
	if _, ok := out.(*recalledIDs); ok {
		// Most of the answer is skipped: checked to be valid JSON, not
		// for duplicate names, which costs more than the skipping.
		opts = append(opts, jsontext.AllowDuplicateNames(true))
	}
	if err := json.UnmarshalRead(resp.Body, out, opts...); err != nil {
		return resp.StatusCode, fmt.Errorf("decode %s %s response: %w", method, path, err)
	}
	return resp.StatusCode, nil
}

func decodeError(resp *http.Response) error {
	ae := &APIError{Status: resp.StatusCode}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if n, err := strconv.Atoi(ra); err == nil {
			ae.RetryAfter = time.Duration(n) * time.Second
		}
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode == http.StatusServiceUnavailable {
		ae.raw = raw
	}
	var env api.ErrorEnvelope
	if err := json.Unmarshal(raw, &env); err == nil && env.Error.Code != "" {
		ae.Code, ae.Message, ae.Details = env.Error.Code, env.Error.Message, env.Error.Details
		return ae
	}
	// Not our envelope (a proxy, or a body like /health's): keep the text.
	ae.Code = "HTTP_" + strconv.Itoa(resp.StatusCode)
	ae.Message = strings.TrimSpace(string(raw))
	if len(ae.Message) > 512 {
		ae.Message = ae.Message[:512] + "…"
	}
	if ae.Message == "" {
		ae.Message = http.StatusText(resp.StatusCode)
	}
	return ae
}

// Remember stores one memory (POST /api/v1/memories/remember).
func (c *Client) Remember(ctx context.Context, req api.RememberRequest) (*api.RememberResponse, error) {
	var out api.RememberResponse
	if _, err := c.do(ctx, http.MethodPost, api.PathRemember, nil, &req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RememberID stores one memory like Remember and returns only its id. The
// rest of the response must still be valid JSON but is not decoded: a bulk
// writer (the load generator, a migrator) needs no more, and decoding the
// whole response costs it more CPU than sending the request.
func (c *Client) RememberID(ctx context.Context, req api.RememberRequest) (string, error) {
	var out struct {
		MemoryID string `json:"memory_id"`
	}
	if _, err := c.do(ctx, http.MethodPost, api.PathRemember, nil, &req, &out); err != nil {
		return "", err
	}
	if out.MemoryID == "" {
		return "", fmt.Errorf("decode POST %s response: no memory_id", api.PathRemember)
	}
	return out.MemoryID, nil
}

// RememberEpisode stores an episode (POST /api/v1/episodes/remember).
func (c *Client) RememberEpisode(ctx context.Context, req api.EpisodeRequest) (*api.RememberResponse, error) {
	var out api.RememberResponse
	if _, err := c.do(ctx, http.MethodPost, api.PathEpisodes, nil, &req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Batch writes memories, associations and an optional cursor atomically
// (POST /api/v1/memories/batch).
func (c *Client) Batch(ctx context.Context, req api.BatchRequest) (*api.BatchResponse, error) {
	var out api.BatchResponse
	if _, err := c.do(ctx, http.MethodPost, api.PathBatch, nil, &req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Cursor returns an importer's stored cursor; ok is false when none is
// stored (GET /api/v1/memories/batch/cursor).
func (c *Client) Cursor(ctx context.Context, source string) (value string, ok bool, err error) {
	var out api.CursorResponse
	_, err = c.do(ctx, http.MethodGet, api.PathBatchCursor, url.Values{"source": {source}}, nil, &out)
	if err != nil {
		if CodeOf(err) == "CURSOR_NOT_FOUND" {
			return "", false, nil
		}
		return "", false, err
	}
	return out.Value, true, nil
}

// Recall recalls by a text or vector cue (POST /api/v1/memories/recall).
func (c *Client) Recall(ctx context.Context, req api.RecallRequest) (*api.RecallResponse, error) {
	var out api.RecallResponse
	if _, err := c.do(ctx, http.MethodPost, api.PathRecall, nil, &req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RecallBody is a recall request encoded once (EncodeRecall) to be sent
// any number of times (RecallIDs): a load generator's prepared cues, whose
// encoding (768 numbers for a vector cue) would otherwise cost it more CPU
// than sending them.
type RecallBody struct{ b []byte }

// EncodeRecall encodes req as Recall sends it, byte for byte.
func EncodeRecall(req api.RecallRequest) (RecallBody, error) {
	var buf bytes.Buffer
	if err := apijson.Encode(&buf, &req); err != nil {
		return RecallBody{}, fmt.Errorf("encode POST %s request: %w", api.PathRecall, err)
	}
	return RecallBody{b: buf.Bytes()}, nil
}

// recalledIDs is the part of a RecallResponse RecallIDs decodes.
type recalledIDs struct {
	Memories struct {
		Vivid      []recalledID `json:"vivid"`
		Associated []recalledID `json:"associated"`
	} `json:"memories"`
}

type recalledID struct {
	ID string `json:"id"`
}

// RecallIDs sends a recall encoded by EncodeRecall (POST
// /api/v1/memories/recall) and returns the ids of its answers in rank
// order: the direct matches (vivid), then those reached by spreading
// activation (associated). The rest of the response must still be valid
// JSON but is not decoded: a load generator checking recall@k needs no
// more, and decoding whole responses costs it more CPU than the exchange.
func (c *Client) RecallIDs(ctx context.Context, body RecallBody) ([]string, error) {
	if len(body.b) == 0 {
		return nil, errors.New("client: RecallIDs: empty body (use EncodeRecall)")
	}
	var out recalledIDs
	if _, err := c.do(ctx, http.MethodPost, api.PathRecall, nil, body, &out); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(out.Memories.Vivid)+len(out.Memories.Associated))
	for _, m := range out.Memories.Vivid {
		ids = append(ids, m.ID)
	}
	for _, m := range out.Memories.Associated {
		ids = append(ids, m.ID)
	}
	return ids, nil
}

// RecallGet recalls through the GET form (query parameters), as Engram's
// clients do.
func (c *Client) RecallGet(ctx context.Context, req api.RecallRequest) (*api.RecallResponse, error) {
	q := url.Values{}
	if req.Query != "" {
		q.Set("query", req.Query)
	}
	if req.Embedding != nil {
		q.Set("embedding", FormatFloats(req.Embedding))
	}
	if req.MaxResults != 0 {
		q.Set("max_results", strconv.Itoa(req.MaxResults))
	}
	if req.Threshold != 0 {
		q.Set("threshold", strconv.FormatFloat(req.Threshold, 'g', -1, 64))
	}
	if len(req.RequiredTags) > 0 {
		q.Set("required_tags", strings.Join(req.RequiredTags, ","))
	}
	if req.FromTime != nil {
		q.Set("from_time", req.FromTime.Format(time.RFC3339Nano))
	}
	if req.ToTime != nil {
		q.Set("to_time", req.ToTime.Format(time.RFC3339Nano))
	}
	if req.Mode != "" {
		q.Set("mode", req.Mode)
	}
	for name, v := range map[string]bool{"trace_activation": req.TraceActivation, "deep": req.Deep, "include_metadata": req.IncludeMetadata} {
		if v {
			q.Set(name, "true")
		}
	}
	var out api.RecallResponse
	if _, err := c.do(ctx, http.MethodGet, api.PathRecall, q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Search is Engram's text search (GET /api/v1/memories/search).
func (c *Client) Search(ctx context.Context, query string, limit int) (*api.SearchResponse, error) {
	q := url.Values{"query": {query}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.SearchResponse
	if _, err := c.do(ctx, http.MethodGet, api.PathSearch, q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Get returns one memory (GET /api/v1/memories/{id}).
func (c *Client) Get(ctx context.Context, id string, withEmbedding bool) (*api.Memory, error) {
	var q url.Values
	if withEmbedding {
		q = url.Values{"include_embedding": {"true"}}
	}
	var out api.Memory
	if _, err := c.do(ctx, http.MethodGet, memoryPath(id), q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// List pages through memories (GET /api/v1/memories).
func (c *Client) List(ctx context.Context, o api.ListOptions) (*api.ListResponse, error) {
	q := url.Values{}
	if o.Tier != "" {
		q.Set("tier", o.Tier)
	}
	if o.Offset > 0 {
		q.Set("offset", strconv.Itoa(o.Offset))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.IncludeEmbeddings {
		q.Set("include_embeddings", "true")
	}
	var out api.ListResponse
	if _, err := c.do(ctx, http.MethodGet, api.PathMemories, q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Forget deletes a memory (DELETE /api/v1/memories/{id}).
func (c *Client) Forget(ctx context.Context, id string) (*api.ForgetResponse, error) {
	var out api.ForgetResponse
	if _, err := c.do(ctx, http.MethodDelete, memoryPath(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Associate adds or updates an association (POST /api/v1/associations).
func (c *Client) Associate(ctx context.Context, req api.AssociationRequest) (*api.AssociationResponse, error) {
	var out api.AssociationResponse
	if _, err := c.do(ctx, http.MethodPost, api.PathAssociations, nil, &req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateSpace creates a space, or returns the existing one with created
// false (POST /api/v1/spaces).
func (c *Client) CreateSpace(ctx context.Context, req api.CreateSpaceRequest) (*api.Space, bool, error) {
	var out api.Space
	status, err := c.do(ctx, http.MethodPost, api.PathSpaces, nil, &req, &out)
	if err != nil {
		return nil, false, err
	}
	return &out, status == http.StatusCreated, nil
}

// Spaces lists every space with its counts (GET /api/v1/spaces).
func (c *Client) Spaces(ctx context.Context) ([]api.Space, error) {
	var out api.SpacesResponse
	if _, err := c.do(ctx, http.MethodGet, api.PathSpaces, nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Spaces, nil
}

// Space describes one space (GET /api/v1/spaces/{name}).
func (c *Client) Space(ctx context.Context, name string) (*api.Space, error) {
	var out api.Space
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/spaces/"+url.PathEscape(name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Health is GET /health. A 503 returns the decoded body and an *APIError.
func (c *Client) Health(ctx context.Context) (*api.Health, error) {
	var out api.Health
	err := c.getAllowing503(ctx, api.PathHealth, &out)
	return &out, err
}

// Alive is GET /health/alive: nil when the process is serving. It is the
// cheapest request the server answers, which loadtest's calibration uses to
// measure the generator's own ceiling.
func (c *Client) Alive(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, api.PathHealthAlive, nil, nil, nil)
	return err
}

// Ready is GET /health/ready: nil when the server is ready to serve.
func (c *Client) Ready(ctx context.Context) error {
	var out api.Probe
	return c.getAllowing503(ctx, api.PathHealthReady, &out)
}

// SystemHealth is GET /api/v1/system/health. An unhealthy server (503)
// returns the decoded report and an *APIError.
func (c *Client) SystemHealth(ctx context.Context) (*api.SystemHealth, error) {
	var out api.SystemHealth
	err := c.getAllowing503(ctx, api.PathSystemHealth, &out)
	return &out, err
}

// getAllowing503 decodes health bodies, which carry their report with a
// 503 as well; the 503 is also returned as an *APIError.
func (c *Client) getAllowing503(ctx context.Context, path string, out any) error {
	var raw []byte
	_, err := c.do(ctx, http.MethodGet, path, nil, nil, &raw)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable && ae.raw != nil {
		if uerr := json.Unmarshal(ae.raw, out); uerr != nil {
			return err
		}
		ae.raw = nil
		return err
	}
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// Metrics returns the Prometheus text exposition of GET /metrics.
func (c *Client) Metrics(ctx context.Context) ([]byte, error) {
	var raw []byte
	if _, err := c.do(ctx, http.MethodGet, api.PathMetrics, nil, nil, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// MetricsAs is GET /metrics with accept as the Accept header (the
// exposition formats the caller parses, in order of preference). It
// returns the body and the answer's Content-Type, which names the format
// the server chose; a body of more than limit bytes is an error.
func (c *Client) MetricsAs(ctx context.Context, accept string, limit int64) (body []byte, contentType string, err error) {
	ra := &rawAnswer{accept: accept, limit: limit}
	if _, err := c.do(ctx, http.MethodGet, api.PathMetrics, nil, nil, ra); err != nil {
		return nil, "", err
	}
	return ra.body, ra.contentType, nil
}

// rawAnswer is do's out for a body read as bytes with its own Accept
// header, a size bound and the answer's Content-Type.
type rawAnswer struct {
	accept      string
	limit       int64
	body        []byte
	contentType string
}

func memoryPath(id string) string { return "/api/v1/memories/" + url.PathEscape(id) }
