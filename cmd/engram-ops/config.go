package main

import (
	"bytes"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/engram-ops/engram-ops/ops/config"
)

// configCmd is the `engram-ops config` group.
type configCmd struct{ app *app }

func newConfigCmd(a *app) *configCmd { return &configCmd{app: a} }

// exampleHeader opens the example configuration.
const exampleHeader = `# engram.toml: every key engram-ops serve reads, set to its default.
# Generated from the code by "engram-ops config example"; keep only what you change.
# Order of precedence: built-in defaults, this file (--config FILE, else ./engram.toml),
# ENGRAM_* environment variables (the key's path upper-cased and joined with "_",
# e.g. limits.max_body_bytes is ENGRAM_LIMITS_MAX_BODY_BYTES), then flags.
# Unknown keys are errors; "engram-ops validate config FILE" prints every problem.

`

func (c *configCmd) command() *cobra.Command {
	group := &cobra.Command{
		Use:     "config",
		Short:   "Configuration reference: a complete, commented example",
		Example: `  engram-ops config example > engram.toml`,
		Args:    cobra.NoArgs,
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	group.AddCommand(&cobra.Command{
		Use:   "example",
		Short: "Print a commented engram.toml with every key at its default",
		Long: `Print a complete engram.toml: every configuration key, each with its comment,
set to the value serve uses when nothing is configured. It is generated from the
configuration types, so it never lists a key the binary does not read, and
reading it back gives exactly the defaults.`,
		Example: `  engram-ops config example > engram.toml
  engram-ops validate config engram.toml`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return c.example() },
	})
	return group
}

func (c *configCmd) example() error {
	cfg := config.Default()
	var buf bytes.Buffer
	buf.WriteString(exampleHeader)
	if err := cfg.Encode(&buf); err != nil {
		return fmt.Errorf("encode the default configuration: %w", err)
	}
	_, err := c.app.stdout.Write(buf.Bytes())
	return err
}
