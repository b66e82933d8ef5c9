package deploytest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/unit"
)

const (
	systemdUnit = "deploy/systemd/tisync.service"
	systemdEnv  = "deploy/systemd/tisync.env.example"
)

// unitOptions parses the unit file with go-systemd's parser and returns its options by section
// and name; a name given more than once keeps every value.
func unitOptions(t *testing.T) map[string]map[string][]string {
	t.Helper()
	opts, err := unit.DeserializeOptions(bytes.NewReader(readRepoFile(t, systemdUnit)))
	if err != nil {
		t.Fatalf("parse %s: %v", systemdUnit, err)
	}
	out := map[string]map[string][]string{}
	for _, o := range opts {
		if out[o.Section] == nil {
			out[o.Section] = map[string][]string{}
		}
		out[o.Section][o.Name] = append(out[o.Section][o.Name], o.Value)
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	opts := unitOptions(t)
	service := opts["Service"]
	want := map[string]string{
		"ExecStart":             "/usr/local/bin/tisync run --config /etc/tisync/tisync.yaml",
		"EnvironmentFile":       "-/etc/tisync/tisync.env",
		"User":                  "tisync",
		"StateDirectory":        "tisync",
		"Restart":               "on-failure",
		"KillSignal":            "SIGTERM",
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"ProtectHome":           "yes",
		"PrivateTmp":            "yes",
		"PrivateDevices":        "yes",
		"CapabilityBoundingSet": "",
		"Environment":           "TISYNC_DATA_DIR=/var/lib/tisync",
	}
	for name, value := range want {
		got, ok := service[name]
		if !ok {
			t.Errorf("[Service] has no %s", name)
			continue
		}
		if got[len(got)-1] != value {
			t.Errorf("[Service] %s=%s, want %s", name, got[len(got)-1], value)
		}
	}
	if opts["Install"]["WantedBy"] == nil {
		t.Error("[Install] has no WantedBy")
	}
	// NB: ProcSubset=pid hides /proc/stat, which the process collector reads for
	// process_start_time_seconds, so /metrics would fail.
	if _, ok := service["ProcSubset"]; ok {
		t.Error("[Service] sets ProcSubset, which breaks the process metrics")
	}

	// TimeoutStopSec covers a graceful stop: shutdown_timeout for the components and again for
	// the NATS drain.
	stop, err := time.ParseDuration(strings.TrimSpace(service["TimeoutStopSec"][0]))
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	effective := configCheck(t, "", map[string]string{"TISYNC_TESTINVITE_ORGANIZATION_ID": "DemoOrganization0001", "TISYNC_TESTINVITE_PRIVATE_KEY": "test-key"})
	timeout, err := time.ParseDuration(effective["shutdown_timeout"].(string))
	if err != nil {
		t.Fatalf("shutdown_timeout: %v", err)
	}
	if stop < timeout+stopMargin {
		t.Errorf("TimeoutStopSec %s, want at least the default shutdown_timeout %s plus %s", stop, timeout, stopMargin)
	}
}

func TestSystemdEnvExample(t *testing.T) {
	// Every variable of the example must be one that tisync reads: config check warns about an
	// unknown TISYNC_ variable, which fails the test.
	env := map[string]string{"TISYNC_TESTINVITE_ORGANIZATION_ID": "DemoOrganization0001"}
	for i, line := range strings.Split(string(readRepoFile(t, systemdEnv)), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value, ok := strings.Cut(line, "=")
		if !ok || !strings.HasPrefix(name, "TISYNC_") {
			t.Errorf("%s:%d: %q is not a TISYNC_ variable assignment", systemdEnv, i+1, line)
			continue
		}
		if !strings.HasPrefix(value, "REPLACE_WITH_") {
			t.Errorf("%s:%d: %s has a value that is not a placeholder", systemdEnv, i+1, name)
		}
		env[name] = value
	}
	if env["TISYNC_TESTINVITE_PRIVATE_KEY"] == "" {
		t.Errorf("%s does not set TISYNC_TESTINVITE_PRIVATE_KEY", systemdEnv)
	}
	configCheck(t, "", env)
}

// systemdAnalyze returns the path of systemd-analyze, skipping the test when it is missing
// (failing it in CI).
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		skipOrFail(t, "systemd-analyze is not installed (Debian package systemd)")
	}
	return path
}

// verifiableUnit writes the unit with ExecStart pointing at the built binary, because
// systemd-analyze verify checks that the executable exists.
func verifiableUnit(t *testing.T) string {
	t.Helper()
	tisync, _ := binaries(t)
	text := strings.ReplaceAll(string(readRepoFile(t, systemdUnit)), "/usr/local/bin/tisync", tisync)
	path := filepath.Join(t.TempDir(), "tisync.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze := systemdAnalyze(t)
	path := verifiableUnit(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, "verify", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify %s: %v\n%s", systemdUnit, err, out)
	}
}

func TestSystemdAnalyzeSecurity(t *testing.T) {
	analyze := systemdAnalyze(t)
	path := verifiableUnit(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The exposure score runs from 0 (locked down) to 10 (unrestricted); --threshold takes it
	// times ten. The unit scores 1.2 with systemd 252; above 2.0 a hardening option was lost.
	out, err := exec.CommandContext(ctx, analyze, "security", "--offline=yes", "--threshold=20", path).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze security: %v; the unit lost hardening:\n%s", err, out)
	}
	if bytes.Contains(out, []byte("Unknown key")) || bytes.Contains(out, []byte("Unknown section")) {
		t.Errorf("systemd-analyze does not know a setting of %s:\n%s", systemdUnit, out)
	}
}
