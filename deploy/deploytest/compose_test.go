package deploytest

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
)

const composeFile = "docker-compose.yml"

// loadCompose loads docker-compose.yml with the Compose specification's own loader, which
// validates it against the specification's schema, interpolates and normalizes it. The caller's
// environment is not used, so that no variable of the machine changes the result.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, composeFile)},
		cli.WithWorkingDirectory(root),
		cli.WithEnv([]string{}),
		cli.WithInterpolation(true),
		cli.WithNormalization(true),
		cli.WithConsistency(true),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	project, err := opts.LoadProject(ctx)
	if err != nil {
		t.Fatalf("load %s: %v", composeFile, err)
	}
	return project
}

func composeService(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return s
}

// serviceEnv returns the environment of a service with every variable set.
func serviceEnv(t *testing.T, s types.ServiceConfig) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range s.Environment {
		if v == nil {
			t.Errorf("service %s: %s has no value", s.Name, k)
			continue
		}
		env[k] = *v
	}
	return env
}

// commandFlag returns the value that follows flag in a command line.
func commandFlag(cmd []string, flag string) (string, bool) {
	i := slices.Index(cmd, flag)
	if i < 0 || i+1 >= len(cmd) {
		return "", false
	}
	return cmd[i+1], true
}

func TestComposeServices(t *testing.T) {
	p := loadCompose(t)
	if p.Name != "tisync" {
		t.Errorf("project name %q, want tisync", p.Name)
	}
	if got, want := p.ServiceNames(), []string{"clickhouse", "nats", "testinvite-sim", "tisync"}; !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Fatalf("services %v, want %v", got, want)
	}

	for _, s := range p.Services {
		// Published ports stay on the loopback interface.
		if len(s.Ports) == 0 {
			t.Errorf("service %s publishes no port", s.Name)
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("service %s publishes %d on %q, want 127.0.0.1 only", s.Name, port.Target, port.HostIP)
			}
		}
		if s.Restart == "" {
			t.Errorf("service %s has no restart policy", s.Name)
		}
		if s.Build == nil {
			tag := s.Image[strings.LastIndex(s.Image, ":")+1:]
			if !strings.Contains(s.Image, ":") || tag == "latest" {
				t.Errorf("service %s: image %q, want a pinned tag", s.Name, s.Image)
			}
		}
		// Named volumes are declared, bind mounts are repository files.
		for _, v := range s.Volumes {
			switch v.Type {
			case types.VolumeTypeVolume:
				if _, ok := p.Volumes[v.Source]; !ok {
					t.Errorf("service %s mounts undeclared volume %q", s.Name, v.Source)
				}
			case types.VolumeTypeBind:
				rel, err := filepath.Rel(repoRoot(t), v.Source)
				if err != nil || strings.HasPrefix(rel, "..") {
					t.Errorf("service %s binds %s, outside the repository", s.Name, v.Source)
					continue
				}
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("service %s binds %s: %v", s.Name, rel, err)
				}
				if !v.ReadOnly {
					t.Errorf("service %s binds %s writable, want read-only", s.Name, rel)
				}
			default:
				t.Errorf("service %s: volume of type %s", s.Name, v.Type)
			}
		}
	}
	for name := range p.Volumes {
		used := false
		for _, s := range p.Services {
			for _, v := range s.Volumes {
				used = used || (v.Type == types.VolumeTypeVolume && v.Source == name)
			}
		}
		if !used {
			t.Errorf("volume %s is declared but not used", name)
		}
	}
}

func TestComposeHealth(t *testing.T) {
	p := loadCompose(t)
	// Each service tisync depends on has a health check in exec form that fetches one URL of the
	// container itself, and tisync waits for all of them.
	wantURL := map[string]string{
		"nats":           "http://127.0.0.1:8222/healthz?js-enabled-only=true",
		"clickhouse":     "http://127.0.0.1:8123/ping",
		"testinvite-sim": "http://127.0.0.1:8080/_admin/stats",
	}
	for name, u := range wantURL {
		s := composeService(t, p, name)
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 {
			t.Errorf("service %s has no health check", name)
			continue
		}
		if hc.Test[0] != "CMD" {
			t.Errorf("service %s: health check %v, want the exec form [CMD, ...]", name, hc.Test)
		}
		if hc.Test[len(hc.Test)-1] != u {
			t.Errorf("service %s: health check fetches %s, want %s", name, hc.Test[len(hc.Test)-1], u)
		}
		if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
			t.Errorf("service %s: health check without interval, timeout or retries", name)
		}
	}
	// nats:*-alpine and clickhouse-server have wget; the simulator image is distroless's debug
	// variant, whose busybox has it under /busybox.
	if img := composeService(t, p, "nats").Image; !strings.HasPrefix(img, "nats:") || !strings.HasSuffix(img, "-alpine") {
		t.Errorf("nats image %q, want an nats:*-alpine image, whose wget the health check uses", img)
	}
	if img := composeService(t, p, "clickhouse").Image; !strings.HasPrefix(img, "clickhouse/clickhouse-server:") {
		t.Errorf("clickhouse image %q, want clickhouse/clickhouse-server", img)
	}
	if test := composeService(t, p, "testinvite-sim").HealthCheck.Test; test[1] != "/busybox/wget" {
		t.Errorf("testinvite-sim health check runs %s, want /busybox/wget of the debug image", test[1])
	}
	if hc := composeService(t, p, "tisync").HealthCheck; hc == nil || hc.Disable {
		t.Error("tisync has no health check")
	} else if want := []string{"CMD", "/usr/local/bin/tisync", "health", "--ready"}; !slices.Equal(hc.Test, want) {
		t.Errorf("tisync health check %v, want %v: the distroless image has no shell, so tisync checks itself", hc.Test, want)
	}

	tisync := composeService(t, p, "tisync")
	for name := range wantURL {
		dep, ok := tisync.DependsOn[name]
		if !ok || dep.Condition != types.ServiceConditionHealthy {
			t.Errorf("tisync depends on %s with %+v, want condition service_healthy", name, dep)
		}
	}
	if ul := composeService(t, p, "clickhouse").Ulimits["nofile"]; ul == nil || ul.Soft < 262144 || ul.Hard < 262144 {
		t.Errorf("clickhouse ulimits nofile %+v, want at least 262144", ul)
	}
}

func TestComposeBuild(t *testing.T) {
	p := loadCompose(t)
	d := parseDockerfile(t)
	for _, name := range []string{"testinvite-sim", "tisync"} {
		s := composeService(t, p, name)
		if s.Build == nil {
			t.Errorf("service %s is not built", name)
			continue
		}
		if s.Build.Context != repoRoot(t) || s.Build.Dockerfile != dockerfile {
			t.Errorf("service %s builds %s in %s, want %s in the repository root", name, s.Build.Dockerfile, s.Build.Context, dockerfile)
		}
		target := s.Build.Target
		if target == "" {
			target = d.stages[len(d.stages)-1].Name
		}
		if target != name {
			t.Errorf("service %s builds stage %q, want %q", name, target, name)
		}
	}
	if cmd := composeService(t, p, "tisync").Command; !slices.Equal(cmd, []string{"run"}) {
		t.Errorf("tisync command %v, want [run]", cmd)
	}
}

func TestComposeTisyncConfig(t *testing.T) {
	p := loadCompose(t)
	tisync := composeService(t, p, "tisync")
	env := serviceEnv(t, tisync)

	// Every TISYNC_ variable of every service is a setting or a secret that tisync reads.
	all := map[string]string{}
	for _, s := range p.Services {
		for k, v := range serviceEnv(t, s) {
			if strings.HasPrefix(k, "TISYNC_") {
				all[k] = v
			}
		}
	}
	for k, v := range env {
		all[k] = v
	}
	configCheck(t, "", all)

	effective := configCheck(t, "", env)
	assertSetting(t, effective, "nats.url", "nats://nats:4222")
	assertSetting(t, effective, "clickhouse.addresses", []any{"clickhouse:9000"})
	assertSetting(t, effective, "http.listen", "0.0.0.0:9464")
	assertSetting(t, effective, "testinvite.base_url", "http://testinvite-sim:8080")

	// The addresses are the services' own.
	sim := composeService(t, p, "testinvite-sim")
	addr, _ := commandFlag(sim.Command, "-addr")
	if _, port, _ := net.SplitHostPort(addr); port != "8080" {
		t.Errorf("testinvite-sim -addr %q, want port 8080 of TISYNC_TESTINVITE_BASE_URL", addr)
	}
	org, _ := commandFlag(sim.Command, "-organization-id")
	if org == "" || org != env["TISYNC_TESTINVITE_ORGANIZATION_ID"] {
		t.Errorf("testinvite-sim -organization-id %q, TISYNC_TESTINVITE_ORGANIZATION_ID %q: want the same", org, env["TISYNC_TESTINVITE_ORGANIZATION_ID"])
	}
	published := false
	for _, port := range tisync.Ports {
		published = published || port.Target == 9464
	}
	if !published {
		t.Error("tisync does not publish its metrics port 9464")
	}

	// shutdown_timeout bounds the whole stop; the grace period keeps a margin above it.
	timeout, err := time.ParseDuration(effective["shutdown_timeout"].(string))
	if err != nil {
		t.Fatal(err)
	}
	if tisync.StopGracePeriod == nil || time.Duration(*tisync.StopGracePeriod) < timeout+stopMargin {
		t.Errorf("tisync stop_grace_period %v, want at least shutdown_timeout %s plus %s", tisync.StopGracePeriod, timeout, stopMargin)
	}
}

func TestComposeCredentials(t *testing.T) {
	p := loadCompose(t)
	tisync := serviceEnv(t, composeService(t, p, "tisync"))
	nats := composeService(t, p, "nats")
	clickhouse := composeService(t, p, "clickhouse")

	// NATS: the server reads its config from the bind-mounted files with the service's
	// environment, and tisync's user and password are the server's.
	configPath, ok := commandFlag(nats.Command, "--config")
	if !ok {
		t.Fatalf("nats command %v has no --config", nats.Command)
	}
	var hostConfig string
	for _, v := range nats.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == configPath {
			hostConfig = v.Source
		}
	}
	if hostConfig == "" {
		t.Fatalf("nats --config %s is not a bind-mounted file", configPath)
	}
	for k, v := range serviceEnv(t, nats) {
		t.Setenv(k, v)
	}
	opts, err := server.ProcessConfigFile(hostConfig)
	if err != nil {
		t.Fatalf("nats-server cannot read %s with the service's environment: %v", hostConfig, err)
	}
	user := natsUser(t, opts, tisync["TISYNC_NATS_USER"])
	if user.Password != tisync["TISYNC_NATS_PASSWORD"] {
		t.Error("tisync's TISYNC_NATS_PASSWORD is not the NATS server's password of its user")
	}
	if opts.MaxPayload < 8<<20 {
		t.Errorf("nats max_payload %d, want 8 MiB", opts.MaxPayload)
	}

	// ClickHouse: users.d/tisync.xml is mounted, every variable it reads is set, and the sink's
	// password hashes to the hash the server gets.
	users := loadClickHouseUsers(t)
	mounted := false
	for _, v := range clickhouse.Volumes {
		mounted = mounted || (v.Type == types.VolumeTypeBind && v.Source == repoPath(t, clickhouseUsersFile) &&
			strings.HasPrefix(v.Target, "/etc/clickhouse-server/users.d/"))
	}
	if !mounted {
		t.Errorf("clickhouse does not mount %s into /etc/clickhouse-server/users.d/", clickhouseUsersFile)
	}
	chEnv := serviceEnv(t, clickhouse)
	for _, u := range users.Users.Items {
		if u.PasswordSHA256 == nil || u.PasswordSHA256.FromEnv == "" {
			continue
		}
		if _, ok := chEnv[u.PasswordSHA256.FromEnv]; !ok {
			t.Errorf("clickhouse does not set %s, which user %s's password reads", u.PasswordSHA256.FromEnv, u.XMLName.Local)
		}
	}
	sinkUser := users.user(t, tisync["TISYNC_CLICKHOUSE_USERNAME"])
	sum := sha256.Sum256([]byte(tisync["TISYNC_CLICKHOUSE_PASSWORD"]))
	if chEnv[sinkUser.PasswordSHA256.FromEnv] != hex.EncodeToString(sum[:]) {
		t.Errorf("%s is not the SHA-256 of tisync's TISYNC_CLICKHOUSE_PASSWORD", sinkUser.PasswordSHA256.FromEnv)
	}
}

// startSimulator runs the built testinvite-sim with args, its -addr replaced by a free loopback
// port, and returns its base URL once it serves.
func startSimulator(t *testing.T, args []string) string {
	t.Helper()
	_, sim := binaries(t)
	args = slices.Clone(args)
	i := slices.Index(args, "-addr")
	if i < 0 {
		t.Fatalf("simulator arguments %v have no -addr", args)
	}
	args[i+1] = "127.0.0.1:0"

	cmd := exec.Command(sim, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start testinvite-sim: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})

	// The JSON log line "serving TestInvite simulator" carries the bound URL.
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.URL != "" {
				found <- line.URL
				break
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	select {
	case u := <-found:
		return u
	case <-time.After(30 * time.Second):
		t.Fatal("testinvite-sim logged no URL within 30s; -log-json missing from its arguments?")
		return ""
	}
}

func TestComposeSimulatorServesTisync(t *testing.T) {
	p := loadCompose(t)
	sim := composeService(t, p, "testinvite-sim")
	base := startSimulator(t, sim.Command)

	// The container's health check URL, moved to the simulator's port.
	check := sim.HealthCheck.Test[len(sim.HealthCheck.Test)-1]
	u, err := url.Parse(check)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := url.Parse(base)
	u.Host = b.Host
	err = waitFor(10*time.Second, func() error {
		resp, err := http.Get(u.String())
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("health check %s: %v", u, err)
	}

	// tisync, configured as in compose, reads the simulator's task list: the organization id, the
	// demo key and the auth scheme fit. An embedded NATS server replaces the nats service.
	env := serviceEnv(t, composeService(t, p, "tisync"))
	for _, k := range []string{"TISYNC_NATS_URL", "TISYNC_NATS_USER", "TISYNC_NATS_PASSWORD"} {
		delete(env, k)
	}
	env["TISYNC_TESTINVITE_BASE_URL"] = base
	env["TISYNC_DATA_DIR"] = t.TempDir()
	env["TISYNC_NATS_EMBEDDED_LISTEN"] = "none"
	res := runTisync(t, env, "poll", "--entity", "task", "--dry-run")
	if res.err != nil {
		t.Fatalf("tisync poll --entity task --dry-run against the simulator: %v\n%s%s", res.err, res.stdout, res.stderr)
	}
	tasks, _ := commandFlag(sim.Command, "-tasks")
	for _, want := range []string{"scan       complete", "records    " + tasks} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("poll summary lacks %q:\n%s", want, res.stdout)
		}
	}
}
