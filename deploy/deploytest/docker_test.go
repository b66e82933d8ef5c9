package deploytest

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	dfparser "github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

const dockerfile = "deploy/docker/Dockerfile"

// parsedDockerfile is the Dockerfile as BuildKit reads it.
type parsedDockerfile struct {
	stages   []instructions.Stage
	metaArgs []instructions.ArgCommand
}

// parseDockerfile parses the Dockerfile with BuildKit's parser and linter and fails the test on
// any parser warning or lint finding.
func parseDockerfile(t testing.TB) parsedDockerfile {
	t.Helper()
	res, err := dfparser.Parse(bytes.NewReader(readRepoFile(t, dockerfile)))
	if err != nil {
		t.Fatalf("parse %s: %v", dockerfile, err)
	}
	for _, w := range res.Warnings {
		t.Errorf("%s: parser warning at line %d: %s", dockerfile, w.Location.Start.Line, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []dfparser.Range) {
		line := 0
		if len(loc) > 0 {
			line = loc[0].Start.Line
		}
		t.Errorf("%s:%d: lint %s: %s", dockerfile, line, rule, msg)
	}})
	stages, metaArgs, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("read the instructions of %s: %v", dockerfile, err)
	}
	return parsedDockerfile{stages: stages, metaArgs: metaArgs}
}

// stage returns the stage named name.
func (d parsedDockerfile) stage(t testing.TB, name string) instructions.Stage {
	t.Helper()
	for _, s := range d.stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("%s has no stage %q", dockerfile, name)
	return instructions.Stage{}
}

// commands returns the commands of type C in stage s, in order.
func commands[C instructions.Command](s instructions.Stage) []C {
	var out []C
	for _, c := range s.Commands {
		if cc, ok := c.(C); ok {
			out = append(out, cc)
		}
	}
	return out
}

func TestDockerfileStages(t *testing.T) {
	d := parseDockerfile(t)
	var names []string
	for _, s := range d.stages {
		names = append(names, s.Name)
	}
	if want := []string{"build", "testinvite-sim", "tisync"}; !slices.Equal(names, want) {
		t.Fatalf("stages %v, want %v: the production image must be the last (default) stage", names, want)
	}

	// The builder's Go matches go.mod, so the image is built with the toolchain the module needs.
	goMod := string(readRepoFile(t, "go.mod"))
	goVersion := regexp.MustCompile(`(?m)^go (\S+)$`).FindStringSubmatch(goMod)
	if goVersion == nil {
		t.Fatal("go.mod has no go directive")
	}
	var argDefault string
	for _, a := range d.metaArgs {
		for _, kv := range a.Args {
			if kv.Key == "GO_VERSION" && kv.Value != nil {
				argDefault = *kv.Value
			}
		}
	}
	if argDefault != goVersion[1] {
		t.Errorf("ARG GO_VERSION=%s, want go.mod's go %s", argDefault, goVersion[1])
	}
	if build := d.stage(t, "build"); build.BaseName != "golang:${GO_VERSION}-bookworm" {
		t.Errorf("build stage FROM %s, want golang:${GO_VERSION}-bookworm", build.BaseName)
	}

	// The image stages are distroless static images that run as a non-root user.
	distroless := regexp.MustCompile(`^gcr\.io/distroless/static-debian\d+:(nonroot|debug-nonroot)(@sha256:[0-9a-f]{64})?$`)
	for _, name := range []string{"testinvite-sim", "tisync"} {
		s := d.stage(t, name)
		if !distroless.MatchString(s.BaseName) {
			t.Errorf("stage %s FROM %s, want gcr.io/distroless/static-debian12:nonroot (or :debug-nonroot)", name, s.BaseName)
		}
		users := commands[*instructions.UserCommand](s)
		if len(users) == 0 {
			t.Errorf("stage %s sets no USER", name)
			continue
		}
		user := users[len(users)-1].User
		uid, gid, ok := strings.Cut(user, ":")
		u, errU := strconv.Atoi(uid)
		g, errG := strconv.Atoi(gid)
		if !ok || errU != nil || errG != nil || u == 0 || g == 0 {
			t.Errorf("stage %s: USER %s, want a numeric non-root uid:gid such as 65532:65532", name, user)
		}
		entry := commands[*instructions.EntrypointCommand](s)
		if len(entry) != 1 || entry[0].PrependShell {
			t.Errorf("stage %s: want one ENTRYPOINT in exec (JSON) form, since distroless has no shell", name)
		}
	}
	if final := d.stage(t, "tisync"); !strings.HasPrefix(final.BaseName, "gcr.io/distroless/static-debian12:nonroot") {
		t.Errorf("final stage FROM %s, want gcr.io/distroless/static-debian12:nonroot without a shell", final.BaseName)
	}
}

func TestDockerfileBuild(t *testing.T) {
	d := parseDockerfile(t)
	build := d.stage(t, "build")
	var goBuild string
	for _, r := range commands[*instructions.RunCommand](build) {
		line := strings.Join(r.CmdLine, " ")
		if strings.Contains(line, "go build") {
			goBuild = line
		}
	}
	if goBuild == "" {
		t.Fatal("the build stage runs no go build")
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w -X main.version=${VERSION}"`, "./cmd/tisync", "./cmd/testinvite-sim"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("go build command lacks %s:\n%s", want, goBuild)
		}
	}
	// -X main.version must name a variable that exists, or the version is silently not set.
	if !regexp.MustCompile(`(?m)^var version = ""$`).Match(readRepoFile(t, "cmd/tisync/version.go")) {
		t.Error(`cmd/tisync/version.go no longer declares var version = "", which -X main.version sets`)
	}

	// No stage fetches remote files with ADD, whose content the build cannot pin, and every
	// COPY --from names an earlier stage.
	seen := map[string]bool{}
	for _, s := range d.stages {
		for _, add := range commands[*instructions.AddCommand](s) {
			for _, src := range add.SourcePaths {
				if strings.Contains(src, "://") || strings.HasPrefix(src, "git@") {
					t.Errorf("stage %s: ADD %s fetches a remote source", s.Name, src)
				}
			}
		}
		for _, cp := range commands[*instructions.CopyCommand](s) {
			if cp.From != "" && !seen[cp.From] {
				t.Errorf("stage %s: COPY --from=%s names no earlier stage", s.Name, cp.From)
			}
		}
		seen[s.Name] = true
	}
}

func TestDockerfileImage(t *testing.T) {
	d := parseDockerfile(t)
	final := d.stage(t, "tisync")

	var binaries []string
	for _, cp := range commands[*instructions.CopyCommand](final) {
		if cp.From == "build" && cp.DestPath == "/usr/local/bin/" {
			for _, src := range cp.SourcePaths {
				binaries = append(binaries, filepath.Base(src))
			}
		}
	}
	slices.Sort(binaries)
	if want := []string{"testinvite-sim", "tisync"}; !slices.Equal(binaries, want) {
		t.Errorf("binaries copied to /usr/local/bin/: %v, want %v", binaries, want)
	}

	env := map[string]string{}
	for _, e := range commands[*instructions.EnvCommand](final) {
		for _, kv := range e.Env {
			env[kv.Key] = kv.Value
		}
	}
	if env["TISYNC_DATA_DIR"] != "/var/lib/tisync" {
		t.Errorf("ENV TISYNC_DATA_DIR=%q, want /var/lib/tisync", env["TISYNC_DATA_DIR"])
	}
	var volumes, ports []string
	for _, v := range commands[*instructions.VolumeCommand](final) {
		volumes = append(volumes, v.Volumes...)
	}
	for _, e := range commands[*instructions.ExposeCommand](final) {
		ports = append(ports, e.Ports...)
	}
	if !slices.Contains(volumes, "/var/lib/tisync") {
		t.Errorf("VOLUME %v does not include the data directory /var/lib/tisync", volumes)
	}
	if !slices.Equal(ports, []string{"9464"}) {
		t.Errorf("EXPOSE %v, want 9464", ports)
	}
	entry := commands[*instructions.EntrypointCommand](final)
	if len(entry) != 1 || !slices.Equal(entry[0].CmdLine, []string{"/usr/local/bin/tisync"}) {
		t.Errorf("ENTRYPOINT %v, want [/usr/local/bin/tisync]", entry)
	}
	cmd := commands[*instructions.CmdCommand](final)
	if len(cmd) != 1 || !slices.Equal(cmd[0].CmdLine, []string{"run"}) {
		t.Errorf("CMD %v, want [run]", cmd)
	}
	labels := map[string]string{}
	for _, l := range commands[*instructions.LabelCommand](final) {
		for _, kv := range l.Labels {
			labels[kv.Key] = kv.Value
		}
	}
	for _, key := range []string{"org.opencontainers.image.title", "org.opencontainers.image.version", "org.opencontainers.image.revision", "org.opencontainers.image.source"} {
		if labels[key] == "" {
			t.Errorf("LABEL %s is missing", key)
		}
	}

	// The variable and the port the image relies on are tisync's: TISYNC_DATA_DIR sets data_dir,
	// and the exposed port is http.listen's default port.
	effective := configCheck(t, "", map[string]string{
		"TISYNC_DATA_DIR":                   env["TISYNC_DATA_DIR"],
		"TISYNC_TESTINVITE_ORGANIZATION_ID": "DemoOrganization0001",
		"TISYNC_TESTINVITE_PRIVATE_KEY":     "test-key",
	})
	assertSetting(t, effective, "data_dir", "/var/lib/tisync")
	listen, _ := lookup(effective, "http.listen")
	if s, _ := listen.(string); !strings.HasSuffix(s, ":"+ports[0]) {
		t.Errorf("http.listen defaults to %v, which is not the exposed port %s", listen, ports[0])
	}
}

func TestDockerignore(t *testing.T) {
	patterns, err := ignorefile.ReadAll(bytes.NewReader(readRepoFile(t, ".dockerignore")))
	if err != nil {
		t.Fatalf("read .dockerignore: %v", err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatalf(".dockerignore patterns: %v", err)
	}
	excluded := func(rel string) bool {
		t.Helper()
		ok, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			t.Fatalf("match %s: %v", rel, err)
		}
		return ok
	}
	for _, rel := range []string{".git", ".data/tisync", "bin/tisync"} {
		if !excluded(rel) {
			t.Errorf(".dockerignore sends %s to the build", rel)
		}
	}

	// Everything go build reads must reach the build: go.mod, go.sum, the non-test Go files of
	// cmd/, sync/, sink/ and schema/, and the files schema embeds.
	root := repoRoot(t)
	needed := []string{"go.mod", "go.sum"}
	for _, dir := range []string{"cmd", "sync", "sink", "schema"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(path string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(root, path)
			rel = filepath.ToSlash(rel)
			if strings.Contains(rel, "/testdata/") {
				return nil
			}
			isSource := strings.HasSuffix(rel, ".go") && !strings.HasSuffix(rel, "_test.go")
			isEmbedded := strings.HasPrefix(rel, "schema/") && (strings.HasSuffix(rel, ".sql") || strings.HasSuffix(rel, ".schema.json"))
			if isSource || isEmbedded {
				needed = append(needed, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walk %s: %v", dir, err)
		}
	}
	for _, rel := range needed {
		if excluded(rel) {
			t.Errorf(".dockerignore excludes %s, which the build needs", rel)
		}
	}
}
