// Package embedder owns the embedders that live outside core: an
// OpenAI-compatible HTTP embedder for semantic recall, and the factory that
// maps the configured embedder names ("hash", "openai") to implementations
// for core.Options.Embedders.
//
// It may import core, core/embed and the standard library. Core must never
// import it (core stays free of net/http), and it must not import the rest
// of ops: the server wires it in, not the other way round.
//
// The API key is a secret: it is only ever put in the Authorization header,
// never logged, and never part of an error (server messages are redacted).
package embedder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/engram-ops/engram-ops/core"
)

// Defaults for the zero values of OpenAIConfig.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultMaxBatch         = 64
	DefaultMaxRetries       = 3
	DefaultMaxResponseBytes = 64 << 20
	DefaultAPIKeyEnv        = "OPENAI_API_KEY"
)

const (
	maxBatchLimit   = 2048 // OpenAI's own per-request input limit
	backoffBase     = 500 * time.Millisecond
	backoffMax      = 20 * time.Second // cap of one computed backoff
	maxRetryAfter   = time.Minute      // longer server-requested waits give up instead
	maxErrorBody    = 64 << 10         // bytes of an error response read for its message
	maxErrorMessage = 300              // bytes of a server message kept in an error
)

// OpenAIConfig configures an OpenAI-compatible embeddings API. Zero values
// take the defaults above.
type OpenAIConfig struct {
	// BaseURL is the API root, e.g. "https://api.openai.com/v1"; requests go
	// to BaseURL + "/embeddings" (a query string is kept).
	BaseURL string
	// Model names the embedding model, e.g. "text-embedding-3-small".
	Model string
	// APIKey is sent as "Authorization: Bearer <key>"; empty sends no
	// Authorization header (local servers).
	APIKey string
	// APIKeyEnv names the environment variable the key came from; it is
	// only used to make authentication errors actionable.
	APIKeyEnv string
	// Dimension is the exact length of every returned vector.
	Dimension int
	// SendDimensions sends "dimensions": Dimension, for models that can
	// shorten their output (text-embedding-3-*); others reject the field.
	SendDimensions bool
	// Timeout bounds one HTTP attempt, response body included.
	Timeout time.Duration
	// MaxBatch is the most inputs per request.
	MaxBatch int
	// MaxRetries is how many times a 408, 429 or 5xx answer or a transport
	// error is retried; 0 means DefaultMaxRetries, negative means never.
	MaxRetries int
	// MaxResponseBytes caps one response body.
	MaxResponseBytes int64
	// HTTPClient sends the requests; nil uses a client of its own.
	HTTPClient *http.Client
}

// OpenAI is an embedder backed by an OpenAI-compatible /embeddings API. It
// is safe for concurrent use.
type OpenAI struct {
	endpoint    string // full URL of the embeddings endpoint
	publicURL   string // endpoint without query or user info, for errors
	model       string
	key         string
	keyEnv      string
	dim         int
	sendDims    bool
	timeout     time.Duration
	maxBatch    int
	maxRetries  int
	maxResponse int64
	client      *http.Client
	fp          string

	// sleep waits between attempts; tests replace it.
	sleep func(ctx context.Context, d time.Duration) error
}

var _ core.Embedder = (*OpenAI)(nil)

// NewOpenAI validates cfg and returns the embedder.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	u, err := url.Parse(strings.TrimSpace(cfg.BaseURL))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("openai embedder: base URL must be an http:// or https:// URL")
	}
	if u.User != nil {
		// Credentials belong in the API key, not in a URL that ends up in
		// errors and logs.
		return nil, errors.New("openai embedder: base URL must not contain user info; use the API key")
	}
	if strings.TrimSpace(cfg.Model) == "" {
		return nil, errors.New("openai embedder: model must not be empty")
	}
	if cfg.Dimension <= 0 {
		return nil, fmt.Errorf("openai embedder: dimension must be positive, got %d", cfg.Dimension)
	}
	keyEnv := cfg.APIKeyEnv
	if keyEnv == "" {
		keyEnv = DefaultAPIKeyEnv
	}
	for _, r := range cfg.APIKey {
		if r < 0x20 || r == 0x7f {
			return nil, fmt.Errorf("openai embedder: the API key contains control characters (a stray newline?); check $%s", keyEnv)
		}
	}
	if cfg.Timeout < 0 || cfg.MaxBatch < 0 || cfg.MaxResponseBytes < 0 {
		return nil, errors.New("openai embedder: timeout, max batch and max response bytes must not be negative")
	}
	if cfg.MaxBatch > maxBatchLimit {
		return nil, fmt.Errorf("openai embedder: max batch %d is over the API limit of %d", cfg.MaxBatch, maxBatchLimit)
	}
	u = u.JoinPath("embeddings")
	pub := *u
	pub.RawQuery, pub.Fragment = "", ""
	o := &OpenAI{
		endpoint:    u.String(),
		publicURL:   pub.String(),
		model:       cfg.Model,
		key:         cfg.APIKey,
		keyEnv:      keyEnv,
		dim:         cfg.Dimension,
		sendDims:    cfg.SendDimensions,
		timeout:     orDefault(cfg.Timeout, DefaultTimeout),
		maxBatch:    orDefault(cfg.MaxBatch, DefaultMaxBatch),
		maxRetries:  orDefault(cfg.MaxRetries, DefaultMaxRetries),
		maxResponse: orDefault(cfg.MaxResponseBytes, DefaultMaxResponseBytes),
		client:      cfg.HTTPClient,
		fp:          "openai/" + cfg.Model + "/" + strconv.Itoa(cfg.Dimension),
		sleep:       sleepContext,
	}
	if o.maxRetries < 0 {
		o.maxRetries = 0
	}
	if o.client == nil {
		o.client = &http.Client{}
	}
	return o, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// Dimension returns the configured vector length.
func (o *OpenAI) Dimension() int { return o.dim }

// Fingerprint returns "openai/<model>/<dim>".
func (o *OpenAI) Fingerprint() string { return o.fp }

// Embed embeds texts in batches of MaxBatch, one request at a time, and
// returns the vectors in input order. A blank text (empty or whitespace
// only, which the API rejects) gets the zero vector without a request, as
// with the built-in hashing embedder.
func (o *OpenAI) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	pending := make([]int, 0, len(texts))
	for i, t := range texts {
		if strings.TrimSpace(t) == "" {
			out[i] = make([]float32, o.dim)
		} else {
			pending = append(pending, i)
		}
	}
	batch := make([]string, 0, min(o.maxBatch, len(pending)))
	for start := 0; start < len(pending); start += o.maxBatch {
		idx := pending[start:min(start+o.maxBatch, len(pending))]
		batch = batch[:0]
		for _, i := range idx {
			batch = append(batch, texts[i])
		}
		vecs, err := o.embedBatch(ctx, batch)
		if err != nil {
			if len(pending) > o.maxBatch {
				err = fmt.Errorf("%w (inputs %d-%d of %d)", err, start, start+len(idx)-1, len(pending))
			}
			return nil, err
		}
		for j, i := range idx {
			out[i] = vecs[j]
		}
	}
	return out, nil
}

type embeddingRequest struct {
	Model      string   `json:"model"`
	Input      []string `json:"input"`
	Dimensions int      `json:"dimensions,omitempty"`
}

type embeddingResponse struct {
	Data []struct {
		Index     *int      `json:"index"`
		Embedding []float32 `json:"embedding"`
	} `json:"data"`
}

// retryable marks an attempt failure worth retrying, with the wait the
// server asked for (0: none).
type retryable struct {
	err        error
	retryAfter time.Duration
}

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

// embedBatch sends one batch, retrying transient failures with exponential
// backoff or the server's Retry-After.
func (o *OpenAI) embedBatch(ctx context.Context, inputs []string) ([][]float32, error) {
	req := embeddingRequest{Model: o.model, Input: inputs}
	if o.sendDims {
		req.Dimensions = o.dim
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("openai embedder: encode request: %w", err)
	}
	for attempt := 0; ; attempt++ {
		vecs, err := o.attempt(ctx, body, len(inputs))
		if err == nil {
			return vecs, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("openai embedder: request to %s abandoned: %w", o.publicURL, ctx.Err())
		}
		var r *retryable
		if !errors.As(err, &r) {
			return nil, err
		}
		if attempt >= o.maxRetries {
			if attempt == 0 {
				return nil, r.err
			}
			return nil, fmt.Errorf("%w (gave up after %d attempts)", r.err, attempt+1)
		}
		wait := backoff(attempt)
		if r.retryAfter > 0 {
			if r.retryAfter > maxRetryAfter {
				return nil, fmt.Errorf("%w (the server asks to retry after %s, longer than the %s this client waits)", r.err, r.retryAfter, maxRetryAfter)
			}
			wait = r.retryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil, fmt.Errorf("%w (a retry in %s would pass the caller's deadline)", r.err, wait.Round(time.Millisecond))
		}
		if err := o.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("openai embedder: request to %s abandoned while waiting to retry: %w", o.publicURL, err)
		}
	}
}

// backoff is the wait before retry attempt+1: exponential with jitter
// (half fixed, half random) so many clients do not retry in lockstep.
func backoff(attempt int) time.Duration {
	d := backoffMax
	if attempt < 16 {
		d = min(backoffBase<<attempt, backoffMax)
	}
	return d/2 + rand.N(d/2+1)
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// attempt makes one HTTP request and decodes its answer.
func (o *OpenAI) attempt(ctx context.Context, body []byte, n int) ([][]float32, error) {
	actx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, o.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("openai embedder: build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if o.key != "" {
		req.Header.Set("Authorization", "Bearer "+o.key)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		// *url.Error repeats the full URL (query included); name the
		// endpoint without it.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		if ctx.Err() == nil && actx.Err() != nil {
			err = fmt.Errorf("no answer within %s", o.timeout)
		}
		return nil, &retryable{err: fmt.Errorf("openai embedder: POST %s: %w", o.publicURL, err)}
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
	}()

	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return o.decode(actx, resp, n)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		// The body is not quoted: some servers echo part of the key.
		if o.key == "" {
			return nil, &StatusError{StatusCode: code, msg: fmt.Sprintf(
				"openai embedder: %s answered HTTP %d %s and no API key is set: put it in $%s",
				o.publicURL, code, http.StatusText(code), o.keyEnv)}
		}
		return nil, &StatusError{StatusCode: code, msg: fmt.Sprintf(
			"openai embedder: %s rejected the API key (HTTP %d %s): check the key in $%s and its access to model %q",
			o.publicURL, code, http.StatusText(code), o.keyEnv, o.model)}
	default:
		se := &StatusError{StatusCode: code, msg: fmt.Sprintf("openai embedder: %s answered HTTP %d %s",
			o.publicURL, code, http.StatusText(code))}
		if m := o.errorMessage(resp.Body); m != "" {
			se.msg += ": " + m
		}
		if code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500 {
			return nil, &retryable{err: se, retryAfter: retryAfter(resp.Header, time.Now())}
		}
		return nil, se
	}
}

// StatusError is an error answer of the embeddings API.
type StatusError struct {
	StatusCode int
	msg        string
}

func (e *StatusError) Error() string { return e.msg }

// decode reads a success body within the size cap and checks every vector.
func (o *OpenAI) decode(actx context.Context, resp *http.Response, n int) ([][]float32, error) {
	tooBig := fmt.Errorf("openai embedder: the response from %s is larger than the %d-byte limit (MaxResponseBytes); lower MaxBatch or raise the limit",
		o.publicURL, o.maxResponse)
	if resp.ContentLength > o.maxResponse {
		return nil, tooBig
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, o.maxResponse+1))
	if err != nil {
		if actx.Err() != nil && !errors.Is(actx.Err(), context.Canceled) {
			err = fmt.Errorf("no complete answer within %s", o.timeout)
		}
		return nil, &retryable{err: fmt.Errorf("openai embedder: read response from %s: %w", o.publicURL, err)}
	}
	if int64(len(data)) > o.maxResponse {
		return nil, tooBig
	}
	var r embeddingResponse
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("openai embedder: the response from %s is not a valid embeddings answer: %s", o.publicURL, describeJSONError(err, data))
	}
	if len(r.Data) != n {
		return nil, fmt.Errorf("openai embedder: %s returned %d embeddings for %d inputs", o.publicURL, len(r.Data), n)
	}
	out := make([][]float32, n)
	for pos, d := range r.Data {
		i := pos // servers that omit "index" answer in input order
		if d.Index != nil {
			i = *d.Index
		}
		if i < 0 || i >= n || out[i] != nil {
			return nil, fmt.Errorf("openai embedder: %s returned a missing, duplicate or out-of-range index %d for %d inputs", o.publicURL, i, n)
		}
		if len(d.Embedding) != o.dim {
			return nil, fmt.Errorf("openai embedder: model %q returned %d-dimensional embeddings, expected %d; set [embedder.openai] dimension to the model's output size",
				o.model, len(d.Embedding), o.dim)
		}
		for k, f := range d.Embedding {
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				return nil, fmt.Errorf("openai embedder: model %q returned a non-finite value at position %d of embedding %d", o.model, k, i)
			}
		}
		out[i] = d.Embedding
	}
	return out, nil
}

// describeJSONError explains a decode failure; NaN and Infinity are not
// JSON, so a server that emits them fails with a syntax error at the value.
func describeJSONError(err error, data []byte) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		rest := data[max(se.Offset-1, 0):]
		for _, lit := range []string{"NaN", "Infinity", "-Infinity", "nan", "inf", "-inf"} {
			if bytes.HasPrefix(rest, []byte(lit)) {
				return fmt.Sprintf("it contains the non-finite number %s at byte %d", lit, se.Offset)
			}
		}
		return fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && strings.HasPrefix(te.Value, "number") {
		return fmt.Sprintf("value %s at %s is out of float32 range (non-finite)", strings.TrimPrefix(te.Value, "number "), te.Field)
	}
	return err.Error()
}

// errorMessage extracts the server's explanation from an error body,
// redacted of the API key, trimmed and bounded.
func (o *OpenAI) errorMessage(body io.Reader) string {
	data, _ := io.ReadAll(io.LimitReader(body, maxErrorBody))
	var env struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  string          `json:"detail"`
	}
	msg := ""
	if json.Unmarshal(data, &env) == nil {
		var inner struct {
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(env.Error, &inner) == nil && inner.Message != "":
			msg = inner.Message
		case json.Unmarshal(env.Error, &s) == nil && s != "":
			msg = s
		case env.Message != "":
			msg = env.Message
		case env.Detail != "":
			msg = env.Detail
		}
	}
	if msg == "" {
		msg = string(data)
	}
	if o.key != "" {
		msg = strings.ReplaceAll(msg, o.key, "[redacted]")
	}
	msg = strings.Join(strings.Fields(strings.ToValidUTF8(msg, "?")), " ")
	if len(msg) > maxErrorMessage {
		cut := maxErrorMessage
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + "…"
	}
	return msg
}

// retryAfter reads the wait a server asked for: OpenAI's retry-after-ms, or
// Retry-After as seconds or an HTTP date. 0 means none.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 {
			return time.Duration(min(ms, 1e9) * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseFloat(v, 64); err == nil {
		if s <= 0 || math.IsNaN(s) {
			return 0
		}
		// Absurd values are clamped (still over maxRetryAfter), not overflowed.
		return time.Duration(min(s, 1e6) * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
