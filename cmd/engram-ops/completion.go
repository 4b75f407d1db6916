package main

import (
	"github.com/spf13/cobra"
)

// completionCmd is `engram-ops completion SHELL`.
type completionCmd struct {
	app  *app
	root *cobra.Command
}

func newCompletionCmd(a *app, root *cobra.Command) *completionCmd {
	return &completionCmd{app: a, root: root}
}

func (c *completionCmd) command() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print a shell completion script",
		Long: `Print the completion script of engram-ops for a shell. Load it in the current
shell, or install it where the shell reads completions.`,
		Example: `  # bash, current shell
  source <(engram-ops completion bash)

  # bash, every session (Debian/Ubuntu)
  engram-ops completion bash > /etc/bash_completion.d/engram-ops

  # zsh
  engram-ops completion zsh > "${fpath[1]}/_engram-ops"

  # fish
  engram-ops completion fish > ~/.config/fish/completions/engram-ops.fish

  # PowerShell
  engram-ops completion powershell | Out-String | Invoke-Expression`,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := c.app.stdout
			switch args[0] {
			case "bash":
				return c.root.GenBashCompletionV2(out, true)
			case "zsh":
				return c.root.GenZshCompletion(out)
			case "fish":
				return c.root.GenFishCompletion(out, true)
			default:
				return c.root.GenPowerShellCompletionWithDesc(out)
			}
		},
	}
}
