package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/core"
	"github.com/engram-ops/engram-ops/core/apikey"
	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/ops/config"
	"github.com/engram-ops/engram-ops/ops/server"
	"github.com/engram-ops/engram-ops/runbooks"
)

// apikeyCmd is the `engram-ops apikey` group: API keys of a stopped data
// directory (--data-dir, which takes the engine's lock) or of a running
// server (--target with an admin key, /api/v1/admin/apikeys).
type apikeyCmd struct {
	app *app

	dataDir string
	target  string
	token   string

	name        string
	permissions string
	spaces      []string
	expires     string
	rate        string
	overlap     time.Duration
}

func newApikeyCmd(a *app) *apikeyCmd { return &apikeyCmd{app: a} }

// keyManager is what the subcommands need of either place keys live.
type keyManager interface {
	create(ctx context.Context, req api.APIKeyCreateRequest) (api.APIKeyCreated, error)
	list(ctx context.Context) ([]api.APIKey, error)
	revoke(ctx context.Context, id string) (api.APIKey, error)
	rotate(ctx context.Context, id string, overlap time.Duration) (api.APIKeyCreated, error)
}

func (k *apikeyCmd) command() *cobra.Command {
	long := `API keys authenticate requests when the server runs with auth.mode = "api_key".
A key has a name, permissions (read; write, which includes read; admin, which includes
both and covers every space), optionally a list of spaces it is limited to, an expiry
and a rate. The token (engk_...) is printed once at creation; only its SHA-256 is
stored, in the engine's data directory, so backups carry the keys.

Keys live in a data directory: manage them with --data-dir DIR while the server is
stopped, or through a running server with --target URL and an admin key (--token or
$ENGRAM_API_KEY).`
	if rb, err := runbooks.Get("security"); err == nil {
		if sec, ok := rb.Section("Keys"); ok {
			long += "\n\n" + sec
		}
	}
	group := &cobra.Command{
		Use:   "apikey",
		Short: "Create, list, revoke and rotate API keys",
		Long:  long,
		Example: `  engram-ops apikey create --data-dir ./engram-data --name admin --permissions admin
  engram-ops apikey create --target http://127.0.0.1:7432 --name tenant-a --permissions read,write --spaces tenant-a --expires 90d --rate 100/s
  engram-ops apikey list --data-dir ./engram-data --output json
  engram-ops apikey rotate ID --target http://127.0.0.1:7432 --overlap 24h
  engram-ops apikey revoke ID --data-dir ./engram-data`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	where := func(c *cobra.Command) {
		f := c.Flags()
		f.StringVar(&k.dataDir, "data-dir", "", "a stopped server's data directory")
		f.StringVar(&k.target, "target", "", "a running server's URL, e.g. http://127.0.0.1:7432 (needs an admin key)")
		f.StringVar(&k.token, "token", "", "admin API key for --target (default $ENGRAM_API_KEY)")
	}
	create := &cobra.Command{
		Use:     "create",
		Short:   "Create a key and print its token once",
		Example: `  engram-ops apikey create --data-dir ./engram-data --name ci --permissions read,write --spaces ci-runs --expires 90d --rate 100/s`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return k.run(cmd.Context(), func(ctx context.Context, m keyManager) error {
				req := api.APIKeyCreateRequest{Name: k.name, Spaces: k.spaces, Expires: k.expires, Rate: k.rate}
				for _, p := range strings.Split(k.permissions, ",") {
					if p = strings.TrimSpace(p); p != "" {
						req.Permissions = append(req.Permissions, p)
					}
				}
				if _, err := server.SpecFromRequest(req); err != nil {
					return &usageError{err}
				}
				res, err := m.create(ctx, req)
				if err != nil {
					return err
				}
				return k.printCreated(res)
			})
		},
	}
	where(create)
	cf := create.Flags()
	cf.StringVar(&k.name, "name", "", "who or what uses the key (required)")
	cf.StringVar(&k.permissions, "permissions", "read", "read, write, admin (comma-separated; write includes read, admin includes both)")
	cf.StringSliceVar(&k.spaces, "spaces", nil, "spaces the key is limited to (comma-separated; default every space)")
	cf.StringVar(&k.expires, "expires", "", "lifetime, e.g. 90d or 12h (default never)")
	cf.StringVar(&k.rate, "rate", "", "requests the key may make, e.g. 100/s or 600/m (default unlimited)")
	_ = create.MarkFlagRequired("name")

	list := &cobra.Command{
		Use:     "list",
		Short:   "List keys (never their secrets)",
		Example: `  engram-ops apikey list --data-dir ./engram-data --output json`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return k.run(cmd.Context(), func(ctx context.Context, m keyManager) error {
				keys, err := m.list(ctx)
				if err != nil {
					return err
				}
				if k.app.global.output == "json" {
					return k.app.printJSON(api.APIKeyList{Keys: keys})
				}
				tw := tabwriter.NewWriter(k.app.stdout, 0, 2, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tPERMISSIONS\tSPACES\tRATE\tSTATE\tCREATED\tEXPIRES")
				for _, key := range keys {
					spaces := strings.Join(key.Spaces, ",")
					if spaces == "" {
						spaces = "*"
					}
					expires := "-"
					if key.Expires != nil {
						expires = key.Expires.Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", key.ID, key.Name, strings.Join(key.Permissions, ","), spaces,
						orDash(key.Rate), key.State, key.Created.Format(time.RFC3339), expires)
				}
				return tw.Flush()
			})
		},
	}
	where(list)

	revoke := &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke a key at once",
		Example: `  engram-ops apikey revoke 3kTz9QvL0aBc --target http://127.0.0.1:7432`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return k.run(cmd.Context(), func(ctx context.Context, m keyManager) error {
				key, err := m.revoke(ctx, args[0])
				if err != nil {
					return err
				}
				if k.app.global.output == "json" {
					return k.app.printJSON(key)
				}
				fmt.Fprintf(k.app.stdout, "revoked API key %s (%s)\n", key.ID, key.Name)
				return nil
			})
		},
	}
	where(revoke)

	rotate := &cobra.Command{
		Use:     "rotate ID",
		Short:   "Replace a key: print the new token once, keep the old one valid for --overlap",
		Example: `  engram-ops apikey rotate 3kTz9QvL0aBc --data-dir ./engram-data --overlap 24h`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return k.run(cmd.Context(), func(ctx context.Context, m keyManager) error {
				res, err := m.rotate(ctx, args[0], k.overlap)
				if err != nil {
					return err
				}
				return k.printCreated(res)
			})
		},
	}
	where(rotate)
	rotate.Flags().DurationVar(&k.overlap, "overlap", 24*time.Hour, "how long the old key stays valid, so clients can switch")

	group.AddCommand(create, list, revoke, rotate)
	return group
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (k *apikeyCmd) printCreated(res api.APIKeyCreated) error {
	if k.app.global.output == "json" {
		return k.app.printJSON(res)
	}
	fmt.Fprintf(k.app.stdout, "%s\n", res.Token)
	if !k.app.global.quiet {
		fmt.Fprintf(k.app.stderr, "API key %s (%s, %s) created. The token above is shown only now: store it in a secret manager.\n",
			res.Key.ID, res.Key.Name, strings.Join(res.Key.Permissions, ","))
	}
	return nil
}

// run opens where the keys live and runs f on it.
func (k *apikeyCmd) run(ctx context.Context, f func(context.Context, keyManager) error) error {
	switch {
	case k.target != "" && k.dataDir != "":
		return usagef("give --target URL or --data-dir DIR, not both")
	case k.target != "":
		token := k.token
		if token == "" {
			token = k.app.getenv("ENGRAM_API_KEY")
		}
		opts := []client.Option{client.WithUserAgent("engram-ops-apikey")}
		if token != "" {
			opts = append(opts, client.WithToken(token))
		}
		c, err := client.New(k.target, opts...)
		if err != nil {
			return usagef("--target: %v", err)
		}
		return f(ctx, remoteKeys{c})
	case k.dataDir != "":
		st, err := os.Stat(k.dataDir)
		if err != nil || !st.IsDir() {
			return usagef("--data-dir %s is not a directory", k.dataDir)
		}
		cfg := config.Default()
		eng, err := core.Open(k.dataDir, cfg.EngineOptions(nil, cfg.EmbedderFactory(k.app.getenv)))
		if err != nil {
			return fmt.Errorf("open the data directory %s (stop the server that uses it, or use --target with an admin key): %w", k.dataDir, err)
		}
		store, err := apikey.Open(eng)
		if err == nil {
			err = f(ctx, localKeys{store})
		}
		return errors.Join(err, eng.Close())
	}
	return usagef("give --data-dir DIR (a stopped server's data directory) or --target URL (a running server, with an admin key)")
}

// localKeys manages the keys of an open data directory.
type localKeys struct{ s *apikey.Store }

func (l localKeys) create(ctx context.Context, req api.APIKeyCreateRequest) (api.APIKeyCreated, error) {
	spec, err := server.SpecFromRequest(req)
	if err != nil {
		return api.APIKeyCreated{}, &usageError{err}
	}
	token, key, err := l.s.Create(ctx, spec)
	if err != nil {
		return api.APIKeyCreated{}, &usageError{err}
	}
	return api.APIKeyCreated{Key: server.KeyOut(key, time.Now()), Token: token}, nil
}

func (l localKeys) list(context.Context) ([]api.APIKey, error) {
	out := []api.APIKey{}
	now := time.Now()
	for _, key := range l.s.List() {
		out = append(out, server.KeyOut(key, now))
	}
	return out, nil
}

func (l localKeys) revoke(ctx context.Context, id string) (api.APIKey, error) {
	key, err := l.s.Revoke(ctx, id)
	if err != nil {
		return api.APIKey{}, err
	}
	return server.KeyOut(key, time.Now()), nil
}

func (l localKeys) rotate(ctx context.Context, id string, overlap time.Duration) (api.APIKeyCreated, error) {
	token, key, err := l.s.Rotate(ctx, id, overlap)
	if err != nil {
		return api.APIKeyCreated{}, err
	}
	return api.APIKeyCreated{Key: server.KeyOut(key, time.Now()), Token: token}, nil
}

// remoteKeys manages the keys of a running server.
type remoteKeys struct{ c *client.Client }

func (r remoteKeys) create(ctx context.Context, req api.APIKeyCreateRequest) (api.APIKeyCreated, error) {
	res, err := r.c.CreateAPIKey(ctx, req)
	if err != nil {
		return api.APIKeyCreated{}, err
	}
	return *res, nil
}

func (r remoteKeys) list(ctx context.Context) ([]api.APIKey, error) { return r.c.APIKeys(ctx) }

func (r remoteKeys) revoke(ctx context.Context, id string) (api.APIKey, error) {
	res, err := r.c.RevokeAPIKey(ctx, id)
	if err != nil {
		return api.APIKey{}, err
	}
	return *res, nil
}

func (r remoteKeys) rotate(ctx context.Context, id string, overlap time.Duration) (api.APIKeyCreated, error) {
	res, err := r.c.RotateAPIKey(ctx, id, overlap.String())
	if err != nil {
		return api.APIKeyCreated{}, err
	}
	return *res, nil
}
