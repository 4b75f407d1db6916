package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/engram-ops/engram-ops/ops/api"
)

func apiKeyPath(id string) string {
	return strings.Replace(api.PathAdminAPIKey, "{id}", url.PathEscape(id), 1)
}

// CreateAPIKey creates a key (admin); the answer holds the only copy of
// its token.
func (c *Client) CreateAPIKey(ctx context.Context, req api.APIKeyCreateRequest) (*api.APIKeyCreated, error) {
	var out api.APIKeyCreated
	if _, err := c.do(ctx, http.MethodPost, api.PathAdminAPIKeys, nil, req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// APIKeys lists the keys (admin; never secrets).
func (c *Client) APIKeys(ctx context.Context) ([]api.APIKey, error) {
	var out api.APIKeyList
	if _, err := c.do(ctx, http.MethodGet, api.PathAdminAPIKeys, nil, nil, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

// RevokeAPIKey revokes key id (admin).
func (c *Client) RevokeAPIKey(ctx context.Context, id string) (*api.APIKey, error) {
	var out api.APIKey
	if _, err := c.do(ctx, http.MethodDelete, apiKeyPath(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RotateAPIKey replaces key id with a new one; the old stays valid for
// overlap (e.g. "24h").
func (c *Client) RotateAPIKey(ctx context.Context, id, overlap string) (*api.APIKeyCreated, error) {
	var out api.APIKeyCreated
	if _, err := c.do(ctx, http.MethodPost, apiKeyPath(id)+"/rotate", nil, api.APIKeyRotateRequest{Overlap: overlap}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
