package migrate

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
)

// Batch is one atomic write: memories, associations and the cursor stored
// with them.
type Batch struct {
	Memories     []Memory
	Associations []Association
	Source       string // cursor name
	Cursor       string // cursor value
}

// Sink is where migrated memories go: a data directory's engine or a server.
type Sink interface {
	// Cursor returns the cursor stored for source.
	Cursor(ctx context.Context, source string) (string, bool, error)
	// Write stores b in space atomically. A refusal caused by one item is
	// an *ItemError; a full disk is a *StopError.
	Write(ctx context.Context, space string, b *Batch) error
	// Scan calls fn for every memory of space (nothing when the space does
	// not exist).
	Scan(ctx context.Context, space string, fn func(id, content string, tags []string) error) error
	// Associations counts the associations of space (0 when it does not
	// exist).
	Associations(ctx context.Context, space string) (int64, error)
}

// ItemError is a batch refused because of one of its items; the writer
// rejects that item and writes the rest.
type ItemError struct {
	Association bool // else a memory
	Index       int
	Err         error
}

func (e *ItemError) Error() string { return e.Err.Error() }
func (e *ItemError) Unwrap() error { return e.Err }

// StopError ends a run: the target cannot take more (507 Insufficient
// Storage, or the data directory's disk under its reserve).
type StopError struct{ Err error }

func (e *StopError) Error() string {
	return "the target refused writes, so the migration stopped (free space on the target, then run the same command again to resume): " + e.Err.Error()
}
func (e *StopError) Unwrap() error { return e.Err }

var itemPrefix = regexp.MustCompile(`^(memories|associations)\[(\d+)\]: `)

// asItemError recognises an engine message that names one batch item.
func asItemError(msg string, err error) error {
	m := itemPrefix.FindStringSubmatch(msg)
	if m == nil {
		return err
	}
	i, _ := strconv.Atoi(m[2])
	return &ItemError{Association: m[1] == "associations", Index: i, Err: err}
}

// A bulk load into a data directory (an engine with Index.Defer) commits
// larger batches than a server takes in one request: one WAL fsync per
// batch, the cursor in each.
const (
	BulkBatchSize  = 5000
	BulkBatchBytes = 32 << 20
)

// EngineSink writes into an engine opened on a stopped data directory.
type EngineSink struct {
	E       *core.Engine
	created map[string]bool
}

func (s *EngineSink) Cursor(_ context.Context, source string) (string, bool, error) {
	return s.E.Cursor(source)
}

func (s *EngineSink) Write(ctx context.Context, space string, b *Batch) error {
	if s.created == nil {
		s.created = map[string]bool{}
	}
	if !s.created[space] {
		if _, _, err := s.E.CreateSpace(ctx, core.SpaceConfig{Name: space}); err != nil {
			return fmt.Errorf("create space %q: %w", space, err)
		}
		s.created[space] = true
	}
	in := core.BatchInput{Memories: make([]core.RememberInput, len(b.Memories))}
	for i := range b.Memories {
		m := &b.Memories[i]
		in.Memories[i] = core.RememberInput{ID: m.ID, Content: m.Content, Embedding: m.Embedding, Confidence: m.Confidence,
			Type: core.MemoryType(m.Type), Tags: m.Tags, Metadata: m.Metadata}
		if m.ObservedAt != nil {
			in.Memories[i].ObservedAt = *m.ObservedAt
		}
	}
	if len(b.Associations) > 0 {
		in.Associations = make([]core.Association, len(b.Associations))
		for i, a := range b.Associations {
			in.Associations[i] = core.Association{From: a.From, To: a.To, Weight: a.Weight, Kind: a.Kind}
		}
	}
	if b.Source != "" {
		in.Cursor = &core.Cursor{Source: b.Source, Value: b.Cursor}
	}
	_, err := s.E.Batch(ctx, space, in)
	if err == nil {
		return nil
	}
	var ce *core.Error
	if errors.As(err, &ce) {
		switch ce.Kind {
		case core.KindInsufficientStorage:
			return &StopError{Err: err}
		case core.KindInvalid, core.KindNotFound, core.KindTooLarge:
			return asItemError(ce.Message, err)
		}
	}
	return err
}

func (s *EngineSink) Scan(ctx context.Context, space string, fn func(id, content string, tags []string) error) error {
	err := s.E.ScanMemories(ctx, space, false, func(m core.Memory) error { return fn(m.ID, m.Content, m.Tags) })
	if core.CodeOf(err) == "SPACE_NOT_FOUND" {
		return nil
	}
	return err
}

func (s *EngineSink) Associations(_ context.Context, space string) (int64, error) {
	st, err := s.E.Space(space)
	if core.CodeOf(err) == "SPACE_NOT_FOUND" {
		return 0, nil
	}
	return st.Associations, err
}

// ClientSink writes to a running server through POST /api/v1/memories/batch.
// 429 and 503 (and transport failures) are retried with exponential backoff
// and full jitter, honouring Retry-After, for up to RetryFor; 507 stops the
// run with the server's message.
type ClientSink struct {
	C *client.Client
	// RetryFor bounds how long one batch is retried; default 10 minutes.
	RetryFor time.Duration
	// OnRetry is told about each retry (for progress output).
	OnRetry func(err error, wait time.Duration)
	// sleep is replaced in tests.
	sleep   func(ctx context.Context, d time.Duration) error
	created map[string]bool
}

func (s *ClientSink) Cursor(ctx context.Context, source string) (string, bool, error) {
	var v string
	var ok bool
	err := s.retry(ctx, func() error {
		var err error
		v, ok, err = s.C.Cursor(ctx, source)
		return err
	})
	return v, ok, err
}

func (s *ClientSink) Write(ctx context.Context, space string, b *Batch) error {
	c := s.C.WithSpace(space)
	if s.created == nil {
		s.created = map[string]bool{}
	}
	if !s.created[space] {
		err := s.retry(ctx, func() error {
			_, _, err := c.CreateSpace(ctx, api.CreateSpaceRequest{ID: space})
			return err
		})
		if err != nil {
			return s.classify(fmt.Errorf("create space %q: %w", space, err))
		}
		s.created[space] = true
	}
	req := api.BatchRequest{Memories: make([]api.BatchMemory, len(b.Memories))}
	for i := range b.Memories {
		m := &b.Memories[i]
		req.Memories[i] = api.BatchMemory{ID: m.ID, Content: m.Content, Embedding: m.Embedding, Confidence: m.Confidence,
			Tags: m.Tags, MemoryType: m.Type, Timestamp: m.ObservedAt, Metadata: m.Metadata}
	}
	for _, a := range b.Associations {
		req.Associations = append(req.Associations, api.BatchAssociation{From: a.From, To: a.To, Weight: a.Weight, Kind: a.Kind})
	}
	if b.Source != "" {
		req.Cursor = &api.Cursor{Source: b.Source, Value: b.Cursor}
	}
	err := s.retry(ctx, func() error {
		_, err := c.Batch(ctx, req)
		return err
	})
	return s.classify(err)
}

func (s *ClientSink) classify(err error) error {
	if err == nil {
		return nil
	}
	var ae *client.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch {
	case ae.Status == http.StatusInsufficientStorage:
		return &StopError{Err: err}
	case ae.Status == http.StatusRequestEntityTooLarge && ae.Code != "CONTENT_TOO_LARGE" && !itemPrefix.MatchString(ae.Message):
		return fmt.Errorf("the server refused the batch as too large (lower --batch-size or --batch-bytes): %w", err)
	case ae.Status >= 400 && ae.Status < 500:
		return asItemError(ae.Message, err)
	}
	return err
}

// retry runs f until it succeeds, fails with a non-retryable error, or
// retrying has taken RetryFor.
func (s *ClientSink) retry(ctx context.Context, f func() error) error {
	limit := s.RetryFor
	if limit <= 0 {
		limit = 10 * time.Minute
	}
	sleep := s.sleep
	if sleep == nil {
		sleep = sleepCtx
	}
	start := time.Now()
	backoff := 100 * time.Millisecond
	for {
		err := f()
		if err == nil || !client.Retryable(err) {
			return err
		}
		if time.Since(start) > limit {
			return fmt.Errorf("the server still refused after retrying for %s (limit --retry-for): %w", limit, err)
		}
		// Full jitter: a random wait up to the current backoff, at least
		// what the server asked for.
		wait := time.Duration(rand.Int64N(int64(backoff))) + time.Millisecond
		var ae *client.APIError
		if errors.As(err, &ae) && ae.RetryAfter > wait {
			wait = ae.RetryAfter
		}
		if s.OnRetry != nil {
			s.OnRetry(err, wait)
		}
		if err := sleep(ctx, wait); err != nil {
			return err
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func (s *ClientSink) Scan(ctx context.Context, space string, fn func(id, content string, tags []string) error) error {
	c := s.C.WithSpace(space)
	if _, err := c.Space(ctx, space); client.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	offset := 0
	for {
		var page *api.ListResponse
		err := s.retry(ctx, func() error {
			var err error
			page, err = c.List(ctx, api.ListOptions{Offset: offset, Limit: 1000})
			return err
		})
		if err != nil {
			return err
		}
		for _, m := range page.Memories {
			if err := fn(m.ID, m.Content, m.Tags); err != nil {
				return err
			}
		}
		offset += len(page.Memories)
		if !page.Pagination.HasMore || len(page.Memories) == 0 {
			return nil
		}
	}
}

func (s *ClientSink) Associations(ctx context.Context, space string) (int64, error) {
	sp, err := s.C.WithSpace(space).Space(ctx, space)
	if client.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return sp.Associations, nil
}
