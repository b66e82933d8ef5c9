package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tisync/tisync/cmd/tisync/internal/config"
)

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the configuration",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and print the effective settings with secrets masked",
		Long: `check loads the config file (--config or TISYNC_CONFIG), applies the TISYNC_* environment
variables and reads the secrets, validates everything, and prints the effective configuration as
YAML. Secret values are never printed: a comment block says which are set and where they came from.
It exits with 1 and lists every problem when the configuration is invalid.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path := a.configPath
			if path == "" {
				path = lookupEnv(a.environ, "TISYNC_CONFIG")
			}
			cfg, err := config.Load(path, a.environ)
			if err != nil {
				return err
			}
			if a.logLevel != "" {
				cfg.Log.Level = a.logLevel
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration:\n%w", err)
			}
			for _, w := range cfg.Warnings {
				fmt.Fprintf(a.stderr, "warning: %s\n", w)
			}
			source := ""
			if path != "" {
				source = ", then " + path
			}
			fmt.Fprintf(a.stdout, "# effective configuration: built-in defaults%s, then TISYNC_* environment variables\n", source)
			return cfg.WriteEffective(a.stdout)
		},
	})
	return cmd
}
