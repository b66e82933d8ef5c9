package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tisync.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultsValidate(t *testing.T) {
	cfg, err := Load("", []string{"TISYNC_TESTINVITE_ORGANIZATION_ID=org1", "TISYNC_TESTINVITE_PRIVATE_KEY=key"})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if got, want := cfg.NATS.Embedded.StoreDir, filepath.Join(".data", "tisync", "nats"); got != want {
		t.Errorf("embedded store dir = %q, want %q", got, want)
	}
}

func TestLoadBadConfigs(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		// want lists substrings that the error must contain: the setting, the value and the fix.
		want []string
	}{
		{
			name: "unknown key",
			yaml: "nats:\n  urll: nats://x:4222\n",
			want: []string{"line 2", "nats.urll", "unknown setting in nats", "did you mean url?"},
		},
		{
			name: "unknown top-level key",
			yaml: "poling:\n  enabled: false\n",
			want: []string{"poling", "unknown setting at the top level", "did you mean poll?"},
		},
		{
			name: "unknown key in an inline section",
			yaml: "sink:\n  batch_event: 5\n",
			want: []string{"sink.batch_event", "did you mean batch_events?"},
		},
		{
			name: "missing private key",
			env:  []string{"TISYNC_TESTINVITE_ORGANIZATION_ID=org1"},
			want: []string{"TISYNC_TESTINVITE_PRIVATE_KEY", "basic"},
		},
		{
			name: "bad log level",
			yaml: "log:\n  level: loud\n",
			want: []string{"log.level", `"loud"`, "debug, info, warn or error"},
		},
		{
			name: "bad log format",
			yaml: "log:\n  format: xml\n",
			want: []string{"log.format", `"xml"`, "auto, json or console"},
		},
		{
			name: "empty data dir",
			yaml: "data_dir: \"\"\n",
			want: []string{"data_dir", "directory path"},
		},
		{
			name: "negative shutdown timeout",
			yaml: "shutdown_timeout: -5s\n",
			want: []string{"shutdown_timeout", "-5s", "positive duration"},
		},
		{
			name: "duration without unit",
			yaml: "shutdown_timeout: 30\n",
			want: []string{"shutdown_timeout"},
		},
		{
			name: "bad NATS URL scheme",
			yaml: "nats:\n  url: http://127.0.0.1:4222\n",
			want: []string{"nats.url", `"http"`, "nats, tls, ws or wss"},
		},
		{
			name: "NATS URL with credentials",
			yaml: "nats:\n  url: nats://bob:hunter2@127.0.0.1:4222\n",
			want: []string{"nats.url", "contains credentials", "TISYNC_NATS_PASSWORD"},
		},
		{
			name: "embedded listen without port",
			yaml: "nats:\n  embedded:\n    listen: localhost\n",
			want: []string{"nats.embedded.listen", `"localhost"`, "host:port"},
		},
		{
			name: "embedded listen on every interface",
			yaml: "nats:\n  embedded:\n    listen: \":4222\"\n",
			want: []string{"nats.embedded.listen", "explicit host"},
		},
		{
			name: "negative max reconnects",
			yaml: "nats:\n  max_reconnects: -2\n",
			want: []string{"nats.max_reconnects", "-2"},
		},
		{
			name: "TLS cert without key",
			yaml: "nats:\n  tls:\n    cert_file: client.pem\n",
			want: []string{"nats.tls", "cert_file", "key_file"},
		},
		{
			name: "inline NATS password",
			yaml: "nats:\n  user: bob\n  password: hunter2\n",
			want: []string{"line 3", "nats.password", "TISYNC_NATS_PASSWORD", "secret_files.nats_password"},
		},
		{
			name: "inline private key",
			yaml: "testinvite:\n  private_key: abc\n",
			want: []string{"testinvite.private_key", "TISYNC_TESTINVITE_PRIVATE_KEY"},
		},
		{
			name: "password without user",
			yaml: "nats:\n  url: nats://127.0.0.1:4222\n",
			env:  []string{"TISYNC_NATS_PASSWORD=hunter2"},
			want: []string{"nats.user", "TISYNC_NATS_PASSWORD"},
		},
		{
			name: "sink reads another stream",
			yaml: "poll:\n  enabled: false\nsink:\n  stream: OTHER\n",
			want: []string{"sink.stream", `"OTHER"`, "publish.stream.name"},
		},
		{
			name: "inline clickhouse password",
			yaml: "clickhouse:\n  password: pw\n",
			want: []string{"clickhouse.password", "TISYNC_CLICKHOUSE_PASSWORD"},
		},
		{
			name: "missing organization",
			want: []string{"testinvite.organization_id", "poll.enabled"},
		},
		{
			name: "duplicate window shorter than poll timeout",
			yaml: "testinvite:\n  organization_id: org1\npoll:\n  timeout: 3h\n",
			want: []string{"publish.stream.duplicate_window", "poll.timeout"},
		},
		{
			name: "bad cron schedule",
			yaml: "testinvite:\n  organization_id: org1\npoll:\n  schedules:\n    ticket: hourly\n",
			want: []string{"poll.schedules.ticket", `"hourly"`, "cron expression"},
		},
		{
			name: "bad duration in environment",
			env:  []string{"TISYNC_SHUTDOWN_TIMEOUT=soon"},
			want: []string{"TISYNC_SHUTDOWN_TIMEOUT", `"soon"`, "duration"},
		},
		{
			name: "bad integer in environment",
			env:  []string{"TISYNC_NATS_MAX_RECONNECTS=many"},
			want: []string{"TISYNC_NATS_MAX_RECONNECTS", "integer"},
		},
		{
			name: "missing secret file",
			env:  []string{"TISYNC_NATS_TOKEN_FILE=/nonexistent/token"},
			want: []string{"secret nats_token", "/nonexistent/token", "TISYNC_NATS_TOKEN_FILE"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.yaml != "" {
				path = writeConfig(t, tt.yaml)
			}
			cfg, err := Load(path, tt.env)
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			for _, secret := range []string{"hunter2", "abc\n"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains the secret %q", err, secret)
				}
			}
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	path := writeConfig(t, "log:\n  level: loud\n  format: xml\nshutdown_timeout: 0s\npoll:\n  enabled: false\nhttp:\n  ready_timeout: soon\n")
	cfg, err := Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{"log.level", "log.format", "shutdown_timeout", "http.ready_timeout"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %s", err, w)
		}
	}
}

func TestEnvironmentOverridesFile(t *testing.T) {
	path := writeConfig(t, "log:\n  level: debug\nnats:\n  url: nats://file:4222\n  connect_timeout: 9s\n")
	cfg, err := Load(path, []string{
		"TISYNC_POLL_ENABLED=false",
		"TISYNC_NATS_URL=nats://env-1:4222,nats://env-2:4222",
		"TISYNC_LOG_FORMAT=json",
		"TISYNC_SHUTDOWN_TIMEOUT=1m",
		"TISYNC_NATS_TLS_ENABLED=true",
		"TISYNC_NATS_MAX_RECONNECTS=7",
		"TISYNC_NATS_EMBEDDED_MAX_STORE_BYTES=1048576",
		"UNRELATED=1",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := cfg.NATS.URL; got != "nats://env-1:4222,nats://env-2:4222" {
		t.Errorf("nats.url = %q, want the environment's value", got)
	}
	if got := cfg.Log.Level; got != "debug" {
		t.Errorf("log.level = %q, want the file's debug", got)
	}
	if got := cfg.Log.Format; got != "json" {
		t.Errorf("log.format = %q, want json", got)
	}
	if got := cfg.ShutdownTimeout; got != time.Minute {
		t.Errorf("shutdown_timeout = %s, want 1m", got)
	}
	if got := cfg.NATS.ConnectTimeout; got != 9*time.Second {
		t.Errorf("nats.connect_timeout = %s, want the file's 9s", got)
	}
	if !cfg.NATS.TLS.Enabled {
		t.Error("nats.tls.enabled = false, want true")
	}
	if got := cfg.NATS.MaxReconnects; got != 7 {
		t.Errorf("nats.max_reconnects = %d, want 7", got)
	}
	if got := cfg.NATS.Embedded.MaxStoreBytes; got != 1<<20 {
		t.Errorf("nats.embedded.max_store_bytes = %d, want 1048576", got)
	}
}

func TestUnknownEnvironmentVariableWarns(t *testing.T) {
	cfg, err := Load("", []string{"TISYNC_NATS_URLL=nats://x:4222", "TISYNC_TEST_CLICKHOUSE_ADDR=127.0.0.1:9000"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 {
		t.Fatalf("warnings = %q, want one", cfg.Warnings)
	}
	if !strings.Contains(cfg.Warnings[0], "TISYNC_NATS_URLL") {
		t.Errorf("warning %q does not name the variable", cfg.Warnings[0])
	}
}

func TestSecretsFromEnvironmentAndFiles(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("tok-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("key-from-config-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, "nats:\n  url: nats://127.0.0.1:4222\n  user: bob\nsecret_files:\n  testinvite_private_key: "+keyFile+"\n  clickhouse_password: /nonexistent/but/overridden\n")
	cfg, err := Load(path, []string{
		"TISYNC_NATS_PASSWORD=pw-from-env",
		"TISYNC_NATS_TOKEN_FILE=" + tokenFile,
		"TISYNC_CLICKHOUSE_PASSWORD=ch-from-env",
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.NATS.Password; got != "pw-from-env" {
		t.Errorf("nats password = %q", got)
	}
	if got := cfg.NATS.Token; got != "tok-from-file" {
		t.Errorf("nats token = %q, want the file's content without its newline", got)
	}
	if got := string(cfg.TestInvite.PrivateKey); got != "key-from-config-file" {
		t.Errorf("private key = %q", got)
	}
	if got := cfg.ClickHouse.Password; got != "ch-from-env" {
		t.Errorf("clickhouse password = %q, want the environment to win over secret_files", got)
	}
}

func TestWriteEffectiveMasksSecrets(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("private-key-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := writeConfig(t, "nats:\n  url: nats://127.0.0.1:4222\n  user: bob\nsecret_files:\n  testinvite_private_key: "+keyFile+"\n")
	cfg, err := Load(path, []string{"TISYNC_NATS_PASSWORD=nats-password-value", "TISYNC_CLICKHOUSE_PASSWORD=clickhouse-password-value"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := cfg.WriteEffective(&out); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, secret := range []string{"private-key-value", "nats-password-value", "clickhouse-password-value"} {
		if strings.Contains(text, secret) {
			t.Errorf("output contains the secret %q:\n%s", secret, text)
		}
	}
	for _, want := range []string{
		"nats_password: ****** (from environment variable TISYNC_NATS_PASSWORD)",
		"testinvite_private_key: ****** (from file named by secret_files.testinvite_private_key",
		"nats_token: not set",
		"user: bob",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}

	// The printed configuration is itself a valid config file that loads to the same settings.
	again, err := Load(writeConfig(t, text), nil)
	if err != nil {
		t.Fatalf("effective config does not load: %v", err)
	}
	if again.NATS.URL != cfg.NATS.URL || again.NATS.User != cfg.NATS.User || again.ShutdownTimeout != cfg.ShutdownTimeout {
		t.Errorf("reloaded config differs: %+v", again.NATS)
	}
}

func TestInlineSectionFromEnvironment(t *testing.T) {
	cfg, err := Load("", []string{"TISYNC_SINK_BATCH_EVENTS=500", "TISYNC_SINK_ENABLED=false"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Sink.BatchEvents != 500 || cfg.Sink.Enabled {
		t.Errorf("sink = enabled %v, batch_events %d; want false and 500", cfg.Sink.Enabled, cfg.Sink.BatchEvents)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings = %q", cfg.Warnings)
	}
}

func TestEnvName(t *testing.T) {
	if got := EnvName("nats.embedded.listen"); got != "TISYNC_NATS_EMBEDDED_LISTEN" {
		t.Errorf("EnvName = %q", got)
	}
}

func TestExampleConfigsLoad(t *testing.T) {
	for _, path := range []string{"../../../../deploy/tisync.example.yaml", "../../../../deploy/local/demo.yaml"} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cfg, err := Load(path, []string{"TISYNC_TESTINVITE_PRIVATE_KEY=key"})
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
