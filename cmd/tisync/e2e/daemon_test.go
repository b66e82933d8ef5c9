package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// daemon is the tisync binary run as a child process with `tisync run`. Every run uses the same
// configuration file, data directory and ports, so a restart finds the embedded NATS store and the
// durable consumer of the run before.
type daemon struct {
	t        testing.TB
	dir      string
	config   string
	env      []string
	httpAddr string
	natsAddr string

	mu      sync.Mutex
	lines   []logLine
	runs    int
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// logLine is one line that tisync wrote, decoded when it is a JSON log entry.
type logLine struct {
	run    int
	raw    string
	time   time.Time
	level  string
	msg    string
	fields map[string]any
}

// str returns a string field of the entry, or "".
func (l logLine) str(key string) string {
	s, _ := l.fields[key].(string)
	return s
}

// num returns a numeric field of the entry, or 0.
func (l logLine) num(key string) float64 {
	f, _ := l.fields[key].(float64)
	return f
}

// duration returns a duration field, which tisync's JSON logs write as a Go duration string.
func (l logLine) duration(key string) time.Duration {
	d, _ := time.ParseDuration(l.str(key))
	return d
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// newDaemon writes settings as the YAML configuration of a daemon in a new directory, with the HTTP
// listener and the embedded NATS server on free loopback ports. env adds TISYNC_* variables, for
// example the private key. The daemon does not start until start is called.
func newDaemon(t testing.TB, settings map[string]any, env ...string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{
		t:        t,
		dir:      dir,
		config:   filepath.Join(dir, "tisync.yaml"),
		httpAddr: freeAddr(t),
		natsAddr: freeAddr(t),
	}
	base := map[string]any{
		"data_dir":         filepath.Join(dir, "data"),
		"shutdown_timeout": "20s",
		"log":              map[string]any{"level": "info", "format": "json"},
		"http":             map[string]any{"listen": d.httpAddr},
		"nats":             map[string]any{"embedded": map[string]any{"listen": d.natsAddr}},
	}
	merge(base, settings)
	data, err := yaml.Marshal(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.config, data, 0o600); err != nil {
		t.Fatal(err)
	}
	d.env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TZ=UTC"}, env...)
	t.Cleanup(func() {
		d.mu.Lock()
		running := d.cmd != nil && d.exited != nil
		exited := d.exited
		d.mu.Unlock()
		if running {
			select {
			case <-exited:
			default:
				_ = d.cmd.Process.Kill()
				<-exited
			}
		}
		if t.Failed() {
			d.keepLog()
		}
	})
	return d
}

// keepLog writes every line of every run to a file that outlives the test and logs its path with
// the last lines, for a failed test.
func (d *daemon) keepLog() {
	tail := strings.Join(d.tail(40), "\n")
	f, err := os.CreateTemp("", "tisync-e2e-*.log")
	if err != nil {
		d.t.Logf("tisync log, last 40 lines:\n%s", tail)
		return
	}
	defer f.Close()
	for _, line := range d.tail(len(d.lines)) {
		fmt.Fprintln(f, line)
	}
	d.t.Logf("tisync log in %s; last 40 lines:\n%s", f.Name(), tail)
}

// merge copies src into dst, merging nested maps key by key.
func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// start runs the daemon and waits until it logs that it is ready.
func (d *daemon) start() {
	d.t.Helper()
	d.startAsync()
	d.waitLog("tisync ready", 60*time.Second, func(l logLine) bool { return l.msg == "tisync ready" })
}

// startAsync runs the daemon without waiting for it to become ready.
func (d *daemon) startAsync() {
	d.t.Helper()
	cmd := exec.Command(tisyncBinary, "run", "--config", d.config)
	cmd.Dir = d.dir
	cmd.Env = d.env
	r, w, err := os.Pipe()
	if err != nil {
		d.t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		d.t.Fatalf("start tisync: %v", err)
	}
	w.Close()

	d.mu.Lock()
	d.runs++
	run := d.runs
	d.cmd = cmd
	exited := make(chan struct{})
	d.exited = exited
	d.mu.Unlock()

	go func() {
		d.read(run, r)
		r.Close()
		err := cmd.Wait()
		d.mu.Lock()
		d.waitErr = err
		d.mu.Unlock()
		close(exited)
	}()
}

// read stores every line of one run's output.
func (d *daemon) read(run int, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for sc.Scan() {
		line := logLine{run: run, raw: sc.Text()}
		var entry map[string]any
		if json.Unmarshal(sc.Bytes(), &entry) == nil {
			line.fields = entry
			line.msg, _ = entry["msg"].(string)
			line.level, _ = entry["level"].(string)
			if ts, ok := entry["time"].(string); ok {
				line.time, _ = time.Parse("2006-01-02T15:04:05.000Z0700", ts)
			}
		}
		d.mu.Lock()
		d.lines = append(d.lines, line)
		d.mu.Unlock()
	}
}

// pid returns the process id of the current run.
func (d *daemon) pid() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cmd.Process.Pid
}

// run returns the number of the current run, starting at 1.
func (d *daemon) run() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.runs
}

// alive reports whether the current run's process has not exited.
func (d *daemon) alive() bool {
	d.mu.Lock()
	exited := d.exited
	d.mu.Unlock()
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL to the current run and waits until the process is gone.
func (d *daemon) kill() {
	d.t.Helper()
	if err := d.sigkill(); err != nil {
		d.t.Fatal(err)
	}
}

// sigkill is kill for goroutines other than the test's: it returns an error instead of failing the
// test.
func (d *daemon) sigkill() error {
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill tisync: %w", err)
	}
	select {
	case <-exited:
		return nil
	case <-time.After(30 * time.Second):
		return errors.New("tisync still running 30s after SIGKILL")
	}
}

// stop sends SIGTERM and returns the exit code once the process has ended.
func (d *daemon) stop() int {
	d.t.Helper()
	d.mu.Lock()
	cmd, exited := d.cmd, d.exited
	d.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		d.t.Fatalf("stop tisync: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		d.t.Fatal("tisync still running 60s after SIGTERM")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var exit *exec.ExitError
	if errors.As(d.waitErr, &exit) {
		return exit.ExitCode()
	}
	return 0
}

// logs returns the lines logged so far that match.
func (d *daemon) logs(match func(logLine) bool) []logLine {
	return d.logsFrom(0, match)
}

// logsFrom returns the lines that match among those logged after the first from lines.
func (d *daemon) logsFrom(from int, match func(logLine) bool) []logLine {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []logLine
	for _, l := range d.lines[min(from, len(d.lines)):] {
		if match(l) {
			out = append(out, l)
		}
	}
	return out
}

// lineCount returns the number of lines logged so far.
func (d *daemon) lineCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.lines)
}

// tail returns the last n lines logged by any run.
func (d *daemon) tail(n int) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	from := max(len(d.lines)-n, 0)
	out := make([]string, 0, len(d.lines)-from)
	for _, l := range d.lines[from:] {
		out = append(out, fmt.Sprintf("[run %d] %s", l.run, l.raw))
	}
	return out
}

// waitLog waits until a line of the current run matches and returns it. It fails the test when the
// process exits or the timeout passes first, with what naming the awaited line.
func (d *daemon) waitLog(what string, timeout time.Duration, match func(logLine) bool) logLine {
	d.t.Helper()
	run := d.run()
	deadline := time.Now().Add(timeout)
	seen := 0
	for {
		d.mu.Lock()
		lines := d.lines[seen:]
		seen = len(d.lines)
		d.mu.Unlock()
		for _, l := range lines {
			if l.run == run && match(l) {
				return l
			}
		}
		if !d.alive() {
			d.t.Fatalf("tisync exited before logging %s", what)
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("tisync did not log %s within %s", what, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// errorLines returns the Error-level lines of every run.
func (d *daemon) errorLines() []logLine {
	return d.logs(func(l logLine) bool { return l.level == "error" })
}

// metrics scrapes /metrics of the current run.
func (d *daemon) metrics(ctx context.Context) (metricSet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.httpAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	return metricSet(families), nil
}

// mustMetrics is metrics that fails the test on an error.
func (d *daemon) mustMetrics() metricSet {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m, err := d.metrics(ctx)
	if err != nil {
		d.t.Fatal(err)
	}
	return m
}

// readyz requests /readyz and returns the status code and the decoded report.
func (d *daemon) readyz(ctx context.Context) (int, readyReport, error) {
	var report readyReport
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.httpAddr+"/readyz", nil)
	if err != nil {
		return 0, report, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, report, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&report); err != nil {
		return resp.StatusCode, report, fmt.Errorf("decode /readyz: %w", err)
	}
	return resp.StatusCode, report, nil
}

// readyReport is the body of /readyz.
type readyReport struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

// vmStatus reads resident memory fields (VmRSS, VmHWM) in bytes from /proc/PID/status.
func vmStatus(pid int) (map[string]int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(string(data), "\n") {
		name, value, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "Vm") {
			continue
		}
		var kb int64
		if _, err := fmt.Sscanf(strings.TrimSpace(value), "%d kB", &kb); err == nil {
			out[name] = kb << 10
		}
	}
	return out, nil
}

// metricSet is one scrape of /metrics.
type metricSet map[string]*dto.MetricFamily

// sum adds the values of the counters and gauges named name whose labels include every pair of
// labels (given as name, value, name, value ...).
func (m metricSet) sum(name string, labels ...string) float64 {
	f := m[name]
	if f == nil {
		return 0
	}
	total := 0.0
	for _, metric := range f.GetMetric() {
		if !hasLabels(metric, labels) {
			continue
		}
		switch {
		case metric.Counter != nil:
			total += metric.Counter.GetValue()
		case metric.Gauge != nil:
			total += metric.Gauge.GetValue()
		case metric.Untyped != nil:
			total += metric.Untyped.GetValue()
		case metric.Histogram != nil:
			total += float64(metric.Histogram.GetSampleCount())
		}
	}
	return total
}

func hasLabels(metric *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range metric.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
