package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/ops/api"
	"github.com/engram-ops/engram-ops/ops/client"
	"github.com/engram-ops/engram-ops/ops/config"
)

// healthCmd is `engram-ops health`: one probe of a running server, for
// container HEALTHCHECKs and scripts, where no curl is available.
type healthCmd struct {
	app *app
	tls tlsClientFlags

	target     string
	configFile string
	probe      string
	timeout    time.Duration
}

func newHealthCmd(a *app) *healthCmd { return &healthCmd{app: a} }

func (h *healthCmd) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Probe a running server's /health/ready (or /health/alive); exit 0 only when it passes",
		Long: `Probe a running server once, as a container HEALTHCHECK or a script does: GET
/health/ready (--probe ready, the default) or /health/alive (--probe alive) on
--target, and exit 0 only when it answers 200. The probes need no API key.

Without --target the address is serve's own: listen from ENGRAM_LISTEN (or
--config FILE, else ./engram.toml), with a wildcard host (0.0.0.0, ::) probed on
loopback, over https when tls.cert_file is set. A container's HEALTHCHECK thus
follows the ENGRAM_LISTEN it serves on.

Exit status: 0 the probe passed; 3 the server answered and is not ready (503);
1 the server could not be reached within --timeout; 2 a bad flag.`,
		Example: `  # The image's HEALTHCHECK
  engram-ops health --target http://127.0.0.1:7432

  # Liveness over TLS
  engram-ops health --target https://engram.internal:7432 --probe alive --ca-file ca.pem`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("target") {
				t, err := h.servedTarget()
				if err != nil {
					return err
				}
				h.target = t
			}
			return h.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&h.target, "target", "", "base URL of the server (default: serve's listen address from the configuration)")
	f.StringVar(&h.configFile, "config", "", "TOML configuration file the address is read from when --target is not given (default ./engram.toml if present)")
	f.StringVar(&h.probe, "probe", "ready", "ready (/health/ready) or alive (/health/alive)")
	f.DurationVar(&h.timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	h.tls.add(f)
	return cmd
}

// servedTarget is the URL serve listens on by the configuration: file,
// then ENGRAM_* environment.
func (h *healthCmd) servedTarget() (string, error) {
	cfg, _, err := config.Load(h.configFile, h.app.getenv)
	if err != nil {
		return "", &usageError{fmt.Errorf("invalid configuration:\n%s", indentProblems(err))}
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return "", usagef("listen %q: %v; give --target URL", cfg.Listen, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	if cfg.TLS.CertFile != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port), nil
}

func (h *healthCmd) run(ctx context.Context) error {
	path := map[string]string{"ready": api.PathHealthReady, "alive": api.PathHealthAlive}[h.probe]
	if path == "" {
		return usagef("--probe %q: want ready or alive", h.probe)
	}
	if h.timeout <= 0 {
		return usagef("--timeout %s: want a positive duration, e.g. --timeout 5s", h.timeout)
	}
	hc, err := h.tls.httpClient(h.app)
	if err != nil {
		return err
	}
	hc.Timeout = h.timeout
	c, err := client.New(h.target, client.WithHTTPClient(hc), client.WithUserAgent("engram-ops-health"))
	if err != nil {
		return usagef("--target: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	if h.probe == "alive" {
		err = c.Alive(ctx)
	} else {
		err = c.Ready(ctx)
	}
	var ae *client.APIError
	switch {
	case err == nil:
		if !h.app.global.quiet {
			fmt.Fprintf(h.app.stdout, "%s%s: ok\n", h.target, path)
		}
		return nil
	case errors.As(err, &ae) && ae.Status == http.StatusServiceUnavailable:
		return &checkFailed{msg: fmt.Sprintf("%s%s: not %s (503): %v", h.target, path, h.probe, err)}
	default:
		return fmt.Errorf("%s%s: %w\nTry: check the server runs and --target names its address", h.target, path, err)
	}
}
