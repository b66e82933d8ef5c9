package schema_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tisync/tisync/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites the file when -update is set.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("rendered SQL differs from %s (run go test -update after checking the change):\n%s", path, got)
	}
}

func renderAll(t *testing.T, opts schema.RenderOptions) string {
	t.Helper()
	var b strings.Builder
	boot, err := schema.BootstrapStatements(opts)
	if err != nil {
		t.Fatal(err)
	}
	b.WriteString("-- bootstrap\n")
	for _, s := range boot {
		b.WriteString(s + ";\n\n")
	}
	ms, err := schema.Migrations(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		b.WriteString("-- " + m.File + "\n")
		for _, s := range m.Statements {
			b.WriteString(s + ";\n\n")
		}
	}
	return b.String()
}

func TestMigrationsGolden(t *testing.T) {
	cases := []struct {
		name string
		opts schema.RenderOptions
	}{
		{"single", schema.RenderOptions{Database: "tisync"}},
		{"cluster_replicated", schema.RenderOptions{Database: "analytics", Cluster: "main", Replicated: true}},
		{"replicated_custom_path", schema.RenderOptions{
			Database: "tisync", Replicated: true,
			ZooKeeperPath: "/ch/{cluster}/{shard}/{database}.{table}", ReplicaName: "{host}",
		}},
		{"cluster_not_replicated", schema.RenderOptions{Database: "tisync", Cluster: "shards"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			golden(t, "migrations_"+tc.name+".sql", renderAll(t, tc.opts))
		})
	}
}

func TestMigrationsOrderedAndStable(t *testing.T) {
	a, err := schema.Migrations(schema.RenderOptions{Database: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := schema.Migrations(schema.RenderOptions{Database: "b", Cluster: "c", Replicated: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(a) == 0 || len(a) != len(b) {
		t.Fatalf("got %d and %d migrations", len(a), len(b))
	}
	for i := range a {
		if i > 0 && a[i].Version <= a[i-1].Version {
			t.Errorf("migration %s does not follow %s", a[i].File, a[i-1].File)
		}
		if a[i].Checksum != b[i].Checksum {
			t.Errorf("checksum of %s depends on render options", a[i].File)
		}
		if len(a[i].Checksum) != 64 {
			t.Errorf("checksum of %s = %q, want 64 hex digits", a[i].File, a[i].Checksum)
		}
		if len(a[i].Statements) == 0 {
			t.Errorf("migration %s has no statements", a[i].File)
		}
	}
}

func TestRenderOptionsRejected(t *testing.T) {
	cases := []struct {
		name string
		opts schema.RenderOptions
		want string
	}{
		{"empty database", schema.RenderOptions{}, "database"},
		{"database with dash", schema.RenderOptions{Database: "a-b"}, "database"},
		{"cluster with space", schema.RenderOptions{Database: "a", Cluster: "x y"}, "cluster"},
		{"path with quote", schema.RenderOptions{Database: "a", Replicated: true, ZooKeeperPath: "/x'"}, "zookeeper_path"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := schema.Migrations(tc.opts)
			if err == nil {
				t.Fatal("Migrations accepted invalid options")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
		})
	}
}

func TestSplitStatements(t *testing.T) {
	got := schema.SplitStatements("-- comment;\nCREATE TABLE a\n(x UInt8);\n\n-- c2\nSELECT 'a;b';\n")
	want := []string{"CREATE TABLE a\n(x UInt8)", "SELECT 'a;b'"}
	if len(got) != len(want) {
		t.Fatalf("got %d statements %q, want %q", len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("statement %d = %q, want %q", i, got[i], want[i])
		}
	}
}
