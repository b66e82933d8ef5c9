package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// errMigrateNotWired is returned until the ClickHouse sink provides migrations.
var errMigrateNotWired = errors.New("migrate is not available yet: this build has no ClickHouse migrations")

func (a *app) migrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending ClickHouse migrations (placeholder: this build has none yet)",
		Long: `migrate applies the pending ClickHouse schema migrations.

NOTE: this build does not contain the ClickHouse sink yet, so migrate only reports that it is not
available and exits with an error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errMigrateNotWired
		},
	}
	return cmd
}
