package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

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
