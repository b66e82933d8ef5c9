// Package config loads tisync's configuration: one YAML file, then environment variables that
// override single settings, then secrets from the environment or from files. Every default is set in
// Default, and Validate names the bad setting, its value and what is expected.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tisync/tisync/cmd/tisync/internal/natsconn"
	"github.com/tisync/tisync/cmd/tisync/internal/opsserver"
	"github.com/tisync/tisync/sink/clickhouse"
	"github.com/tisync/tisync/sink/consume"
	"github.com/tisync/tisync/sync/checkpoint"
	"github.com/tisync/tisync/sync/poll"
	"github.com/tisync/tisync/sync/publish"
	"github.com/tisync/tisync/sync/testinvite"
)

// Config is the whole configuration of one tisync process. Each section belongs to one component.
type Config struct {
	// DataDir is the directory of tisync's local state, such as the embedded NATS server's store.
	// Default: .data/tisync, relative to the working directory.
	DataDir string `yaml:"data_dir"`
	// ShutdownTimeout bounds a graceful stop after SIGINT or SIGTERM. Default: 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	Log        LogConfig         `yaml:"log"`
	HTTP       opsserver.Config  `yaml:"http"`
	NATS       natsconn.Config   `yaml:"nats"`
	TestInvite testinvite.Config `yaml:"testinvite"`
	Poll       poll.Config       `yaml:"poll"`
	Publish    publish.Config    `yaml:"publish"`
	Checkpoint checkpoint.Config `yaml:"checkpoint"`
	Sink       SinkConfig        `yaml:"sink"`
	ClickHouse clickhouse.Config `yaml:"clickhouse"`

	// SecretFiles names files to read secrets from, one per secret. The environment variable
	// TISYNC_<NAME> (the secret itself) or TISYNC_<NAME>_FILE (a path) takes precedence.
	SecretFiles SecretFiles `yaml:"secret_files"`

	// Warnings lists problems that do not stop tisync, such as an unknown TISYNC_* variable.
	Warnings []string `yaml:"-"`

	// secretSources records where each secret came from, for the masked output of `config check`.
	secretSources map[string]string
	// problems are the settings of the file that could not be decoded; Validate reports them.
	problems []error
}

// SinkConfig configures the ClickHouse sink: whether it runs, and its consumer.
type SinkConfig struct {
	// Enabled runs the sink in `tisync run`. Default: true.
	Enabled bool `yaml:"enabled"`
	// AutoMigrate applies pending ClickHouse migrations when the sink starts, like `tisync migrate`.
	// Default: true.
	AutoMigrate bool `yaml:"auto_migrate"`
	// Config configures the JetStream consumer, its batches and its dead-letter stream.
	consume.Config `yaml:",inline"`
}

// LogConfig sets up the process logger.
type LogConfig struct {
	// Level is debug, info, warn or error. Default: info.
	Level string `yaml:"level"`
	// Format is json, console or auto. Auto writes console lines on a terminal and JSON otherwise.
	// Default: auto.
	Format string `yaml:"format"`
}

// Default returns the configuration used for every setting that the file and the environment leave
// unset.
func Default() Config {
	return Config{
		DataDir:         filepath.Join(".data", "tisync"),
		ShutdownTimeout: 30 * time.Second,
		Log: LogConfig{
			Level:  "info",
			Format: "auto",
		},
		HTTP:       opsserver.DefaultConfig(),
		NATS:       natsconn.DefaultConfig(),
		TestInvite: testinvite.DefaultConfig(),
		Poll:       poll.DefaultConfig(),
		Publish:    publish.DefaultConfig(),
		Checkpoint: checkpoint.DefaultConfig(),
		Sink:       SinkConfig{Enabled: true, AutoMigrate: true, Config: consume.DefaultConfig()},
		ClickHouse: clickhouse.DefaultConfig(),
	}
}

// Load reads the YAML file at path (skipped when path is empty) over the defaults, applies the
// TISYNC_* variables of environ (in os.Environ form) and reads the secrets. It does not validate:
// call Validate on the result.
func Load(path string, environ []string) (*Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		problems, err := decodeYAML(data, &cfg)
		if err != nil {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		// A setting of the wrong type leaves its default: Validate reports it with every other
		// problem instead of stopping at the first.
		for _, p := range problems {
			cfg.problems = append(cfg.problems, fmt.Errorf("config %s: %s", path, p))
		}
	}
	env := parseEnviron(environ)
	if err := applyEnv(&cfg, env); err != nil {
		return nil, err
	}
	if err := cfg.loadSecrets(env); err != nil {
		return nil, err
	}
	cfg.resolve()
	return &cfg, nil
}

// resolve fills the settings whose defaults depend on other settings.
func (c *Config) resolve() {
	if c.NATS.Embedded.StoreDir == "" {
		c.NATS.Embedded.StoreDir = filepath.Join(c.DataDir, "nats")
	}
}

// decodeYAML decodes data into cfg and rejects unknown keys, so that a misspelled setting is an error
// instead of a silently ignored line. It returns the settings that could not be decoded as
// problems, each with its line, path and a hint. It returns an error only when the document cannot
// be read at all.
func decodeYAML(data []byte, cfg *Config) (problems []string, err error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	if err := rejectInlineSecrets(data); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	err = dec.Decode(cfg)
	if err == nil || errors.Is(err, io.EOF) {
		return nil, nil
	}
	var typeErr *yaml.TypeError
	if !errors.As(err, &typeErr) {
		return nil, err
	}
	// yaml's messages give only a line number and Go type names: name the setting and the fix.
	paths := keyPaths(data)
	for _, m := range typeErr.Errors {
		var line int
		if _, scanErr := fmt.Sscanf(m, "line %d:", &line); scanErr == nil && paths[line] != "" {
			m = describeProblem(m, line, paths[line])
		}
		if strings.Contains(m, "time.Duration") {
			m += " (expected a duration with a unit, such as 30s or 5m)"
		}
		problems = append(problems, m)
	}
	return problems, nil
}

// describeProblem rewrites one of yaml's decoding messages about the setting at path.
func describeProblem(msg string, line int, path string) string {
	if strings.Contains(msg, " not found in type ") {
		parent, name := "", path
		if i := strings.LastIndex(path, "."); i >= 0 {
			parent, name = path[:i], path[i+1:]
		}
		where := "at the top level"
		if parent != "" {
			where = "in " + parent
		}
		hint := "see deploy/tisync.example.yaml for every setting"
		if best := closest(name, settingNames(parent)); best != "" {
			hint = "did you mean " + best + "?"
		}
		return fmt.Sprintf("line %d: %s: unknown setting %s; %s", line, path, where, hint)
	}
	return strings.Replace(msg, fmt.Sprintf("line %d:", line), fmt.Sprintf("line %d: %s:", line, path), 1)
}

// settingNames returns the YAML names of the settings of the section at a dotted path.
func settingNames(path string) []string {
	t := reflect.TypeOf(Config{})
	if path != "" {
		for _, part := range strings.Split(path, ".") {
			f, ok := fieldByYAMLName(t, part)
			if !ok || f.Type.Kind() != reflect.Struct {
				return nil
			}
			t = f.Type
		}
	}
	var names []string
	collectNames(t, &names)
	return names
}

func fieldByYAMLName(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, options, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if options == "inline" && f.Type.Kind() == reflect.Struct {
			if inner, ok := fieldByYAMLName(f.Type, name); ok {
				return inner, true
			}
			continue
		}
		if tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func collectNames(t reflect.Type, names *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, options, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case options == "inline" && f.Type.Kind() == reflect.Struct:
			collectNames(f.Type, names)
		case tag != "" && tag != "-":
			*names = append(*names, tag)
		}
	}
}

// closest returns the name nearest to s by edit distance, if it is near enough to be a typo.
func closest(s string, names []string) string {
	best, bestDist := "", len(s)/3+2
	for _, n := range names {
		if d := editDistance(s, n); d < bestDist {
			best, bestDist = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// keyPaths maps each line of a YAML document that starts a key to the key's dotted path.
func keyPaths(data []byte) map[int]string {
	var root yaml.Node
	paths := map[int]string{}
	if yaml.Unmarshal(data, &root) != nil {
		return paths
	}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode, yaml.SequenceNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				path := n.Content[i].Value
				if prefix != "" {
					path = prefix + "." + path
				}
				if _, taken := paths[n.Content[i].Line]; !taken {
					paths[n.Content[i].Line] = path
				}
				walk(n.Content[i+1], path)
			}
		}
	}
	walk(&root, "")
	return paths
}

// Validate checks every section and returns all problems at once, each naming the setting, its value
// and what is expected.
func (c *Config) Validate() error {
	errs := append([]error(nil), c.problems...)
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New(`data_dir: "" is invalid: expected a directory path`))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("shutdown_timeout: %s is invalid: expected a positive duration such as 30s", c.ShutdownTimeout))
	}
	errs = append(errs, prefixed("log", c.Log.Validate())...)
	errs = append(errs, prefixed("http", c.HTTP.Validate())...)
	errs = append(errs, prefixed("nats", c.NATS.Validate())...)
	errs = append(errs, prefixed("publish", c.Publish.Validate())...)
	errs = append(errs, prefixed("checkpoint", c.Checkpoint.Validate())...)
	if c.Sink.Enabled {
		errs = append(errs, prefixed("sink", c.Sink.Config.Validate())...)
		errs = append(errs, prefixed("clickhouse", c.ClickHouse.Validate())...)
		if c.Sink.Stream != c.Publish.Stream.Name {
			errs = append(errs, fmt.Errorf("sink.stream: %q differs from publish.stream.name %q: expected the sink to read the stream the pollers write", c.Sink.Stream, c.Publish.Stream.Name))
		}
	}
	if c.Poll.Enabled {
		if c.TestInvite.OrganizationID == "" {
			errs = append(errs, errors.New("testinvite.organization_id: missing: set it (or TISYNC_TESTINVITE_ORGANIZATION_ID) to the organization to poll, or set poll.enabled to false"))
		} else {
			errs = append(errs, prefixed("testinvite", c.TestInvite.Validate())...)
			if err := c.TestInvite.CheckSecrets(); err != nil {
				errs = append(errs, fmt.Errorf("testinvite %v: set TISYNC_TESTINVITE_PRIVATE_KEY or TISYNC_TESTINVITE_TOKEN (or their _FILE variants), or change testinvite.auth.scheme", err))
			}
		}
		errs = append(errs, prefixed("poll", c.Poll.Validate())...)
		if c.Publish.Stream.DuplicateWindow <= c.Poll.Timeout {
			errs = append(errs, fmt.Errorf("publish.stream.duplicate_window: %s is not longer than poll.timeout %s: expected a longer window, so that a poll redone after a crash publishes no duplicates",
				c.Publish.Stream.DuplicateWindow, c.Poll.Timeout))
		}
	}
	return errors.Join(errs...)
}

// Validate checks the level and the format.
func (l LogConfig) Validate() error {
	var errs []error
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("level: %q is invalid: expected debug, info, warn or error", l.Level))
	}
	switch l.Format {
	case "auto", "json", "console":
	default:
		errs = append(errs, fmt.Errorf("format: %q is invalid: expected auto, json or console", l.Format))
	}
	return errors.Join(errs...)
}

// prefixed splits a joined error of one section into its parts and prefixes each with the section
// name, so that "level: ..." becomes "log.level: ...".
func prefixed(section string, err error) []error {
	if err == nil {
		return nil
	}
	var parts []error
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			parts = append(parts, prefixed(section, e)...)
		}
		return parts
	}
	return []error{&fieldError{section: section, err: err}}
}

// fieldError is a validation error of one setting inside a section.
type fieldError struct {
	section string
	err     error
}

func (e *fieldError) Error() string { return e.section + "." + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }
