package deploytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"go/build"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// modulePath is the module whose root the tests look for above the working directory.
const modulePath = "github.com/tisync/tisync"

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// inCI reports whether the tests run in CI, where a missing tool fails a test instead of skipping it.
func inCI() bool { return os.Getenv("CI") != "" }

// skipOrFail skips the test locally and fails it in CI.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if inCI() {
		t.Fatalf(format+" (CI is set, so this is a failure)", args...)
	}
	t.Skipf(format, args...)
}

// repoRoot returns the repository root: the nearest directory above the working directory whose
// go.mod declares modulePath.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("working directory: %v", err)
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module "+modulePath+"\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("no go.mod of %s above the working directory", modulePath)
		}
		dir = parent
	}
}

// repoPath joins a slash-separated path relative to the repository root.
func repoPath(t testing.TB, rel string) string {
	t.Helper()
	return filepath.Join(repoRoot(t), filepath.FromSlash(rel))
}

// readRepoFile returns the content of a file given relative to the repository root.
func readRepoFile(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(repoPath(t, rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return data
}

// deployFiles returns the files under deploy/ whose names end in one of the suffixes, as paths
// relative to the repository root, sorted.
func deployFiles(t testing.TB, suffixes ...string) []string {
	t.Helper()
	root := repoRoot(t)
	var files []string
	err := filepath.WalkDir(filepath.Join(root, "deploy"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		for _, s := range suffixes {
			if strings.HasSuffix(d.Name(), s) {
				rel, err := filepath.Rel(root, path)
				if err != nil {
					return err
				}
				files = append(files, filepath.ToSlash(rel))
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk deploy/: %v", err)
	}
	sort.Strings(files)
	return files
}

// yamlDocuments splits a multi-document YAML stream into its non-empty documents.
func yamlDocuments(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", len(docs)+1, err)
		}
		if len(doc.Content) == 0 || (doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].Tag == "!!null") {
			continue
		}
		docs = append(docs, &doc)
	}
}

// goCommand returns the go command: the one on PATH, else the one of the GOROOT the tests were
// built with.
func goCommand(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	p := filepath.Join(build.Default.GOROOT, "bin", "go")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("go command not found on PATH or at %s", p)
	}
	return p
}

// binaries builds cmd/tisync and cmd/testinvite-sim once per test run and returns their paths.
func binaries(t testing.TB) (tisync, sim string) {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "tisync-deploytest-")
		if binErr != nil {
			return
		}
		cmd := exec.Command(goCommand(t), "build", "-o", binDir+string(filepath.Separator), "./cmd/tisync", "./cmd/testinvite-sim")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build ./cmd/tisync ./cmd/testinvite-sim: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "tisync"), filepath.Join(binDir, "testinvite-sim")
}

// commandResult is the outcome of one run of a built binary.
type commandResult struct {
	stdout, stderr string
	err            error
}

// runTisync runs the tisync binary with args and exactly the environment env (plus PATH), so
// that the caller's TISYNC_* variables cannot leak in.
func runTisync(t testing.TB, env map[string]string, args ...string) commandResult {
	t.Helper()
	tisync, _ := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tisync, args...)
	cmd.Dir = t.TempDir()
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return commandResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// configCheck runs `tisync config check` with env and, when configFile is not empty, --config. It
// fails the test when the command fails or warns, for example about an unknown TISYNC_* variable,
// and returns the effective configuration it printed, decoded.
func configCheck(t testing.TB, configFile string, env map[string]string) map[string]any {
	t.Helper()
	args := []string{"config", "check"}
	if configFile != "" {
		args = append(args, "--config", configFile)
	}
	res := runTisync(t, env, args...)
	if res.err != nil {
		t.Fatalf("tisync %s: %v\nstderr:\n%s", strings.Join(args, " "), res.err, res.stderr)
	}
	if strings.Contains(res.stderr, "warning:") {
		t.Errorf("tisync %s warned:\n%s", strings.Join(args, " "), res.stderr)
	}
	var effective map[string]any
	if err := yaml.Unmarshal([]byte(res.stdout), &effective); err != nil {
		t.Fatalf("decode the effective configuration printed by tisync config check: %v\n%s", err, res.stdout)
	}
	return effective
}

// lookup returns the value at a dotted path of a decoded YAML mapping, and whether it exists.
func lookup(m map[string]any, path string) (any, bool) {
	var cur any = m
	for _, key := range strings.Split(path, ".") {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		cur, ok = mm[key]
		if !ok {
			return nil, false
		}
	}
	return cur, true
}

// assertSetting fails the test unless the decoded configuration holds want at path.
func assertSetting(t testing.TB, effective map[string]any, path string, want any) {
	t.Helper()
	got, ok := lookup(effective, path)
	if !ok {
		t.Errorf("effective configuration has no %s", path)
		return
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("effective %s = %v, want %v", path, got, want)
	}
}
