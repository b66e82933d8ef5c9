package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// tisyncBinary is built once by TestMain, so that tests run the daemon as a user does: as a separate
// process that receives real signals.
var tisyncBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tisync-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tisyncBinary = filepath.Join(dir, "tisync")
	build := exec.Command("go", "build", "-o", tisyncBinary, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build tisync:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// daemon is a tisync process started by a test.
type daemon struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr bytes.Buffer
	lines  chan string
	done   chan struct{}
}

// startDaemon runs `tisync args...` in dir with env added to a minimal environment.
func startDaemon(t *testing.T, dir string, env []string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(tisyncBinary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}, env...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			d.mu.Lock()
			d.stderr.WriteString(sc.Text() + "\n")
			d.mu.Unlock()
			select {
			case d.lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return d
}

func (d *daemon) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stderr.String()
}

// waitFor waits until a log line contains s.
func (d *daemon) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line := <-d.lines:
			if strings.Contains(line, s) {
				return
			}
		case <-d.done:
			t.Fatalf("tisync exited before logging %q:\n%s", s, d.output())
		case <-deadline:
			t.Fatalf("tisync did not log %q within %s:\n%s", s, timeout, d.output())
		}
	}
}

// stop sends SIGTERM and returns the exit code.
func (d *daemon) stop(t *testing.T) int {
	t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- d.cmd.Wait() }()
	select {
	case err := <-waited:
		<-d.done
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatalf("tisync did not stop within 30s of SIGTERM:\n%s", d.output())
		return -1
	}
}

func TestRunEmbeddedNATS(t *testing.T) {
	dir := t.TempDir()
	addr := freeAddr(t)
	env := []string{"TISYNC_NATS_EMBEDDED_LISTEN=" + addr, "TISYNC_LOG_FORMAT=json", "TISYNC_HTTP_LISTEN=127.0.0.1:0", "TISYNC_POLL_ENABLED=false", "TISYNC_SINK_ENABLED=false"}

	d := startDaemon(t, dir, env, "run")
	d.waitFor(t, "tisync ready", 30*time.Second)
	for _, want := range []string{`"nats_mode":"embedded"`, `"msg":"tisync starting"`} {
		if !strings.Contains(d.output(), want) {
			t.Errorf("start-up log lacks %s:\n%s", want, d.output())
		}
	}

	// The health command reaches the daemon's HTTP listener.
	d.waitFor(t, "HTTP listener started", 10*time.Second)
	httpAddr := ""
	for _, line := range strings.Split(d.output(), "\n") {
		if strings.Contains(line, "HTTP listener started") {
			if _, rest, ok := strings.Cut(line, `"address":"`); ok {
				httpAddr, _, _ = strings.Cut(rest, `"`)
			}
		}
	}
	if httpAddr == "" {
		t.Fatalf("no HTTP listener address in the log:\n%s", d.output())
	}
	health := exec.Command(tisyncBinary, "health", "--ready", "--addr", httpAddr)
	if out, err := health.CombinedOutput(); err != nil {
		t.Errorf("tisync health --ready: %v\n%s", err, out)
	}

	// A JetStream publish through the embedded server's listener succeeds.
	nc, err := nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	ack, err := js.Publish(ctx, "probe.one", []byte("hello"))
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	if ack.Stream != "PROBE" || ack.Sequence != 1 {
		t.Errorf("ack = %+v, want stream PROBE sequence 1", ack)
	}
	nc.Close()

	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0:\n%s", code, d.output())
	}
	if !strings.Contains(d.output(), "tisync stopped") {
		t.Errorf("no stop line in the log:\n%s", d.output())
	}
	if _, err := os.Stat(filepath.Join(dir, ".data", "tisync", "nats", "jetstream")); err != nil {
		t.Fatalf("store directory missing after stop: %v", err)
	}

	// After a restart the stream and its message are still there.
	d = startDaemon(t, dir, env, "run")
	d.waitFor(t, "tisync ready", 30*time.Second)
	nc, err = nats.Connect("nats://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ = jetstream.New(nc)
	stream, err := js.Stream(ctx, "PROBE")
	if err != nil {
		t.Fatalf("stream lost after restart: %v", err)
	}
	msg, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("message lost after restart: %v", err)
	}
	if string(msg.Data) != "hello" {
		t.Errorf("message = %q, want hello", msg.Data)
	}
	nc.Close()
	if code := d.stop(t); code != 0 {
		t.Fatalf("exit code %d after the second SIGTERM, want 0:\n%s", code, d.output())
	}
}

func TestRunRejectsSharedStore(t *testing.T) {
	dir := t.TempDir()
	first := startDaemon(t, dir, []string{"TISYNC_NATS_EMBEDDED_LISTEN=" + freeAddr(t), "TISYNC_HTTP_LISTEN=none", "TISYNC_POLL_ENABLED=false", "TISYNC_SINK_ENABLED=false"}, "run")
	first.waitFor(t, "tisync ready", 30*time.Second)

	second := exec.Command(tisyncBinary, "run")
	second.Dir = dir
	second.Env = []string{"HOME=" + dir, "TISYNC_NATS_EMBEDDED_LISTEN=none", "TISYNC_HTTP_LISTEN=none", "TISYNC_POLL_ENABLED=false", "TISYNC_SINK_ENABLED=false"}
	out, err := second.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("second daemon on the same store: err = %v, want exit code 1:\n%s", err, out)
	}
	if !strings.Contains(string(out), "in use by another process") {
		t.Errorf("output does not explain the shared store:\n%s", out)
	}
	if code := first.stop(t); code != 0 {
		t.Errorf("first daemon exit code %d", code)
	}
}

func TestConfigCheckCommand(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "tisync.yaml")
	if err := os.WriteFile(cfgPath, []byte("nats:\n  url: nats://127.0.0.1:4222\n  user: bob\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tisyncBinary, "config", "check", "--config", cfgPath)
	cmd.Env = []string{"TISYNC_NATS_PASSWORD=s3cret-value", "TISYNC_CLICKHOUSE_PASSWORD=other-s3cret",
		"TISYNC_TESTINVITE_ORGANIZATION_ID=org1", "TISYNC_TESTINVITE_PRIVATE_KEY=third-s3cret"}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("config check: %v\n%s", err, stderr.String())
	}
	all := stdout.String() + stderr.String()
	for _, secret := range []string{"s3cret-value", "other-s3cret", "third-s3cret"} {
		if strings.Contains(all, secret) {
			t.Errorf("output contains the secret %q:\n%s", secret, all)
		}
	}
	if !strings.Contains(stdout.String(), "nats_password: ****** (from environment variable TISYNC_NATS_PASSWORD)") {
		t.Errorf("output does not show the masked password:\n%s", stdout.String())
	}
}

func TestConfigCheckInvalid(t *testing.T) {
	cmd := exec.Command(tisyncBinary, "config", "check")
	cmd.Env = []string{"TISYNC_LOG_LEVEL=loud"}
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("err = %v, want exit code 1:\n%s", err, out)
	}
	if !strings.Contains(string(out), `log.level: "loud" is invalid`) {
		t.Errorf("output does not name the bad setting:\n%s", out)
	}
}

func TestUnknownFlagIsUsageError(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := execute(context.Background(), []string{"run", "--private-key", "x"}, &stdout, &stderr)
	if code != 2 {
		t.Errorf("exit code = %d, want 2", code)
	}
	if !strings.Contains(stderr.String(), "unknown flag") {
		t.Errorf("stderr = %q", stderr.String())
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{{"bogus"}, {"checkpoint", "show"}, {"dlq", "show", "1", "2"}, {"version", "extra"}} {
		var stderr bytes.Buffer
		if code := execute(context.Background(), args, io.Discard, &stderr); code != 2 {
			t.Errorf("tisync %s: exit code %d, want 2 (%s)", strings.Join(args, " "), code, strings.TrimSpace(stderr.String()))
		}
	}
}

func TestVersionCommand(t *testing.T) {
	var stdout bytes.Buffer
	if code := execute(context.Background(), []string{"version"}, &stdout, io.Discard); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	if !strings.HasPrefix(stdout.String(), "tisync ") {
		t.Errorf("version output = %q", stdout.String())
	}
}
