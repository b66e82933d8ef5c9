package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/tisync/tisync/cmd/tisync/internal/config"
	"github.com/tisync/tisync/cmd/tisync/internal/logging"
)

// app carries what every subcommand shares: the global flags, the loaded configuration and the
// logger. Subcommands call load before they use cfg or log.
type app struct {
	configPath string
	logLevel   string
	environ    []string
	stdout     io.Writer
	stderr     io.Writer

	cfg *config.Config
	log *zap.Logger
	// registry collects the metrics of every component; /metrics serves it.
	registry *prometheus.Registry
	// forceSyncOnly turns the sink off regardless of the configuration, for `tisync sync`.
	forceSyncOnly bool
	// pollOff skips the poll settings' validation, for commands that do not poll.
	pollOff bool
}

// execute runs the command line args and returns the process exit code: 0 on success, 1 on an
// error, 2 on a usage error.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	a := &app{environ: os.Environ(), stdout: stdout, stderr: stderr}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if a.log != nil {
		_ = a.log.Sync()
	}
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "tisync: %v\n", err)
	var usage *usageError
	if errors.As(err, &usage) || cobraUsageError(err) {
		return 2
	}
	return 1
}

// cobraUsageError reports whether err is one of cobra's own command-line errors: an unknown command
// or a wrong number of arguments. Cobra has no error types for them, only these messages.
func cobraUsageError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown command ") ||
		strings.Contains(msg, " arg(s), received ") ||
		strings.HasPrefix(msg, "accepts ") ||
		strings.HasPrefix(msg, "requires at least ") ||
		strings.HasPrefix(msg, "unknown shorthand flag")
}

// usageError marks errors in the command line itself, which exit with code 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "tisync",
		Short: "Export TestInvite tasks, tickets and test sessions to NATS JetStream and ClickHouse",
		Long: `tisync polls TestInvite's REST API, detects created, updated and deleted records by
comparing each scan with a stored checkpoint, publishes the changes as CloudEvents to NATS
JetStream, and writes them into ClickHouse tables and views for analytics.

Configuration comes from a YAML file (--config or TISYNC_CONFIG), then TISYNC_* environment
variables, one per setting (nats.url is TISYNC_NATS_URL). Secrets come only from the environment
or from files: TISYNC_TESTINVITE_PRIVATE_KEY, TISYNC_NATS_PASSWORD, TISYNC_CLICKHOUSE_PASSWORD and
so on, or their _FILE variants.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.PersistentFlags().StringVarP(&a.configPath, "config", "c", "", "path of the YAML config file (default: $TISYNC_CONFIG, else built-in defaults)")
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "", "log level: debug, info, warn or error (overrides log.level)")

	root.AddCommand(
		a.versionCommand(),
		a.runCommand(),
		a.syncCommand(),
		a.pollCommand(),
		a.sinkCommand(),
		a.statusCommand(),
		a.healthCommand(),
		a.checkpointCommand(),
		a.dlqCommand(),
		a.migrateCommand(),
		a.configCommand(),
	)
	return root
}

// loadWithoutPoll loads the configuration for commands that do not poll, such as the checkpoint
// commands: the TestInvite settings need not be complete for them.
func (a *app) loadWithoutPoll() error {
	a.pollOff = true
	return a.load()
}

// load reads and validates the configuration and builds the logger, once.
func (a *app) load() error {
	if a.cfg != nil {
		return nil
	}
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
	if a.pollOff {
		// The organization id is kept: commands such as checkpoint list name it.
		cfg.Poll.Enabled = false
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	log, err := logging.New(a.stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		log.Warn(w)
	}
	a.cfg, a.log = cfg, log
	a.registry = prometheus.NewRegistry()
	a.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tisync_build_info",
		Help: "Always 1; the labels name the running tisync version and the Go version it was built with.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(buildVersion(), runtime.Version()).Set(1)
	a.registry.MustRegister(buildInfo)
	return nil
}

func lookupEnv(environ []string, name string) string {
	prefix := name + "="
	for _, kv := range environ {
		if len(kv) > len(prefix) && kv[:len(prefix)] == prefix {
			return kv[len(prefix):]
		}
	}
	return ""
}
