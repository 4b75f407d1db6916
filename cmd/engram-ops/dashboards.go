package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/dashboards"
)

// dashboardsCmd is `engram-ops dashboards …`: the observability files
// compiled into the binary.
type dashboardsCmd struct {
	app *app

	dir   string
	force bool
}

func newDashboardsCmd(a *app) *dashboardsCmd { return &dashboardsCmd{app: a} }

func (d *dashboardsCmd) command() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dashboards",
		Short: "Grafana dashboards, Prometheus rules and the monitoring stack, from the binary",
		Long: `The Grafana dashboards, Prometheus alert and recording rules (with their promtool
unit tests), Grafana provisioning and a docker-compose monitoring stack are compiled
into engram-ops; "dashboards export" writes them out.`,
		Example: `  engram-ops dashboards export --dir ./monitoring`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	export := &cobra.Command{
		Use:   "export",
		Short: "Write the dashboards, rules, provisioning and compose files into a directory",
		Long: `Write every observability file into --dir:

  dashboards/          Grafana dashboards (system-overview, memory-operations,
                       storage-tiers, api-performance)
  rules/               Prometheus alert and recording rules; rules/tests/ holds
                       their unit tests (promtool test rules rules/tests/*.yml)
  provisioning/        Grafana provisioning: datasources/ (Prometheus) and
                       dashboards/ (loads /var/lib/grafana/dashboards/engram)
  prometheus.yml       Prometheus configuration (job "engram", the rules above)
  docker-compose.yml   engram-ops; with --profile monitoring also Prometheus and Grafana

A stock Grafana loads the dashboards from the provisioning files alone when
provisioning/ is mounted at /etc/grafana/provisioning and dashboards/ at
/var/lib/grafana/dashboards/engram, as docker-compose.yml does.

The directory is created if missing. A directory that already has entries is
refused unless --force is given (files are then overwritten; others are kept).`,
		Example: `  # Write the files, then start the stack
  engram-ops dashboards export --dir ./monitoring
  cd monitoring && ENGRAM_OPS_SRC=/path/to/engram-ops docker compose --profile monitoring up -d

  # Refresh an existing export after an upgrade
  engram-ops dashboards export --dir ./monitoring --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return d.export() },
	}
	export.Flags().StringVar(&d.dir, "dir", "", "directory to write into (required)")
	export.Flags().BoolVar(&d.force, "force", false, "write into a directory that is not empty, overwriting files")
	_ = export.MarkFlagRequired("dir")
	cmd.AddCommand(export)
	return cmd
}

func (d *dashboardsCmd) export() error {
	written, err := dashboards.Export(d.dir, d.force)
	if errors.Is(err, dashboards.ErrNotEmpty) {
		return usagef("%v", err)
	}
	if err != nil {
		if errors.Is(err, os.ErrPermission) {
			return fmt.Errorf("%w\nTry: a directory you can write to, e.g. --dir ./monitoring", err)
		}
		return err
	}
	return d.app.printWritten(d.dir, written, "files")
}
