package schema

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

//go:embed bootstrap.sql
var bootstrapSQL string

// Migration is one numbered ClickHouse migration file, rendered for a database and cluster layout.
type Migration struct {
	// Version is the number the file name starts with; migrations apply in ascending order.
	Version uint32
	// Name is the rest of the file name without the extension, such as "entity_tables".
	Name string
	// File is the file name inside the migrations folder, such as "0001_entity_tables.sql".
	File string
	// Checksum is the SHA-256 of the file as embedded, in hex. It does not depend on the render
	// options, so that changing the cluster layout is not mistaken for an edited migration.
	Checksum string
	// Statements are the rendered SQL statements, without comments and trailing semicolons, in
	// file order.
	Statements []string
}

// RenderOptions chooses how migration templates are rendered: the database and, for a ClickHouse
// cluster, the ON CLUSTER clause and replicated table engines. The zero value is invalid because
// Database is required.
type RenderOptions struct {
	// Database is the database every table and view lives in.
	Database string
	// Cluster, when set, adds ON CLUSTER <Cluster> to every DDL statement.
	Cluster string
	// Replicated selects Replicated*MergeTree engines, which need ZooKeeper or ClickHouse Keeper.
	Replicated bool
	// ZooKeeperPath is the coordination path of each replicated table; {database} and {table} are
	// replaced here, other macros such as {shard} are left for the server. Default
	// "/clickhouse/tables/{shard}/{database}/{table}".
	ZooKeeperPath string
	// ReplicaName is the replica name argument of replicated engines. Default "{replica}", the
	// server macro.
	ReplicaName string
}

// DefaultZooKeeperPath is the ZooKeeperPath used when RenderOptions leaves it empty.
const DefaultZooKeeperPath = "/clickhouse/tables/{shard}/{database}/{table}"

// DefaultReplicaName is the ReplicaName used when RenderOptions leaves it empty.
const DefaultReplicaName = "{replica}"

var (
	identifierPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
	migrationPattern  = regexp.MustCompile(`^(\d{4})_([a-z0-9_]+)\.sql$`)
)

// ValidIdentifier reports whether s can be used unquoted as a ClickHouse database or cluster name:
// a letter or underscore followed by letters, digits and underscores, at most 128 characters.
func ValidIdentifier(s string) bool { return identifierPattern.MatchString(s) }

// Validate returns the options with defaults filled in, or an error naming the invalid option.
func (o RenderOptions) Validate() (RenderOptions, error) {
	if !ValidIdentifier(o.Database) {
		return o, fmt.Errorf("database: %q is invalid: expected letters, digits and underscores, starting with a letter or underscore", o.Database)
	}
	if o.Cluster != "" && !ValidIdentifier(o.Cluster) {
		return o, fmt.Errorf("cluster: %q is invalid: expected letters, digits and underscores, starting with a letter or underscore", o.Cluster)
	}
	if o.ZooKeeperPath == "" {
		o.ZooKeeperPath = DefaultZooKeeperPath
	}
	if o.ReplicaName == "" {
		o.ReplicaName = DefaultReplicaName
	}
	for name, v := range map[string]string{"zookeeper_path": o.ZooKeeperPath, "replica_name": o.ReplicaName} {
		if strings.ContainsAny(v, "'\\\n") {
			return o, fmt.Errorf("%s: %q is invalid: quotes, backslashes and newlines are not allowed", name, v)
		}
	}
	return o, nil
}

// render executes one SQL template with the options.
func (o RenderOptions) render(name, text string) (string, error) {
	onCluster := ""
	if o.Cluster != "" {
		onCluster = " ON CLUSTER " + o.Cluster
	}
	funcs := template.FuncMap{
		// engine renders a MergeTree-family engine for a table: ReplacingMergeTree(version) or its
		// replicated form with the coordination path and replica name first.
		"engine": func(table, family string, args ...string) string {
			if !o.Replicated {
				return family + "(" + strings.Join(args, ", ") + ")"
			}
			zkPath := strings.NewReplacer("{database}", o.Database, "{table}", table).Replace(o.ZooKeeperPath)
			all := append([]string{"'" + zkPath + "'", "'" + o.ReplicaName + "'"}, args...)
			return "Replicated" + family + "(" + strings.Join(all, ", ") + ")"
		},
	}
	t, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", name, err)
	}
	var buf bytes.Buffer
	data := struct{ Database, OnCluster string }{o.Database, onCluster}
	if err := t.Execute(&buf, data); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return buf.String(), nil
}

// Migrations returns every embedded migration rendered with opts, ordered by version. It returns an
// error when opts is invalid or a file cannot be rendered.
func Migrations(opts RenderOptions) ([]Migration, error) {
	o, err := opts.Validate()
	if err != nil {
		return nil, err
	}
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var out []Migration
	seen := map[uint32]string{}
	for _, e := range entries {
		m := migrationPattern.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration file %s: name is invalid: expected NNNN_name.sql", e.Name())
		}
		v, _ := strconv.ParseUint(m[1], 10, 32)
		if prev, ok := seen[uint32(v)]; ok {
			return nil, fmt.Errorf("migration files %s and %s share version %d", prev, e.Name(), v)
		}
		seen[uint32(v)] = e.Name()
		body, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(body)
		rendered, err := o.render(e.Name(), string(body))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{
			Version:    uint32(v),
			Name:       m[2],
			File:       e.Name(),
			Checksum:   hex.EncodeToString(sum[:]),
			Statements: SplitStatements(rendered),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// BootstrapStatements returns the rendered statements that create the database and the migration
// runner's own tables, schema_migrations and schema_migrations_lock. Each statement is idempotent.
func BootstrapStatements(opts RenderOptions) ([]string, error) {
	o, err := opts.Validate()
	if err != nil {
		return nil, err
	}
	rendered, err := o.render("bootstrap.sql", bootstrapSQL)
	if err != nil {
		return nil, err
	}
	return SplitStatements(rendered), nil
}

// SplitStatements splits a SQL script into statements at semicolons that end a line, dropping
// comment lines (starting with --) and blank statements. Statements in tisync's migrations never
// contain such a semicolon inside a string literal.
func SplitStatements(script string) []string {
	var stmts []string
	var cur strings.Builder
	flush := func() {
		if s := strings.TrimSpace(cur.String()); s != "" {
			stmts = append(stmts, s)
		}
		cur.Reset()
	}
	for _, line := range strings.Split(script, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--") {
			continue
		}
		if strings.HasSuffix(trimmed, ";") {
			cur.WriteString(strings.TrimSuffix(strings.TrimRight(line, " \t\r"), ";"))
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
	}
	flush()
	return stmts
}
