package client

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"

	"github.com/engram-ops/engram-ops/ops/api"
)

// The admin routes that move a space to another server (engram-ops space
// move): hold its writes, read its change log, purge it.

func spaceAdminPath(pattern, name string) string {
	return strings.Replace(pattern, "{name}", url.PathEscape(name), 1)
}

// HoldSpace holds writes to a space once the writes in flight finish
// (POST /api/v1/admin/spaces/{name}/hold).
func (c *Client) HoldSpace(ctx context.Context, name string) (*api.SpaceHold, error) {
	var out api.SpaceHold
	if _, err := c.do(ctx, http.MethodPost, spaceAdminPath(api.PathAdminSpaceHold, name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ReleaseSpace releases a hold (DELETE /api/v1/admin/spaces/{name}/hold).
func (c *Client) ReleaseSpace(ctx context.Context, name string) (*api.SpaceHold, error) {
	var out api.SpaceHold
	if _, err := c.do(ctx, http.MethodDelete, spaceAdminPath(api.PathAdminSpaceHold, name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SpaceChanges reads up to limit change-log entries of a space after a
// sequence (GET /api/v1/admin/spaces/{name}/changes).
func (c *Client) SpaceChanges(ctx context.Context, name string, after uint64, limit int) (*api.SpaceChanges, error) {
	var out api.SpaceChanges
	q := url.Values{"after": {strconv.FormatUint(after, 10)}}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if _, err := c.do(ctx, http.MethodGet, spaceAdminPath(api.PathAdminSpaceChanges, name), q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PurgeSpace forgets every memory of a held space (POST
// /api/v1/admin/spaces/{name}/purge).
func (c *Client) PurgeSpace(ctx context.Context, name string) (*api.SpacePurge, error) {
	var out api.SpacePurge
	if _, err := c.do(ctx, http.MethodPost, spaceAdminPath(api.PathAdminSpacePurge, name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// maxExportLine bounds one line of an export (one memory).
const maxExportLine = 64 << 20

// ExportSpace streams every memory of a space (GET
// /api/v1/admin/spaces/{name}/export): head is called with the head line
// before the first memory, fn with each memory in id order. An export that
// ends without its end line is an error.
func (c *Client) ExportSpace(ctx context.Context, name string, head func(api.SpaceExportHead) error, fn func(api.BatchMemory) error) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+spaceAdminPath(api.PathAdminSpaceExport, name), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	if c.ua != "" {
		req.Header.Set("User-Agent", c.ua)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, decodeError(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxExportLine)
	if !sc.Scan() {
		return 0, fmt.Errorf("export of %s: no head line: %v", name, sc.Err())
	}
	var h api.SpaceExportHead
	if err := json.Unmarshal(sc.Bytes(), &h); err != nil {
		return 0, fmt.Errorf("export of %s: head line: %w", name, err)
	}
	if err := head(h); err != nil {
		return 0, err
	}
	n := 0
	for sc.Scan() {
		b := sc.Bytes()
		if strings.HasPrefix(string(b[:min(len(b), 16)]), `{"end"`) {
			var end api.SpaceExportEnd
			if err := json.Unmarshal(b, &end); err != nil {
				return n, fmt.Errorf("export of %s: end line: %w", name, err)
			}
			if !end.End || end.Exported != n {
				return n, fmt.Errorf("export of %s stopped after %d memories: %s", name, n, end.Error)
			}
			return n, nil
		}
		var m api.BatchMemory
		if err := json.Unmarshal(b, &m); err != nil {
			return n, fmt.Errorf("export of %s: memory line %d: %w", name, n+1, err)
		}
		if err := fn(m); err != nil {
			return n, err
		}
		n++
	}
	return n, fmt.Errorf("export of %s ended after %d memories without its end line: %v", name, n, sc.Err())
}
