package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// runTisync runs one tisync command in dir and returns its standard output, failing the test on a
// non-zero exit.
func runTisync(t *testing.T, dir string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(tisyncBinary, args...)
	cmd.Dir = dir
	cmd.Env = append([]string{"HOME=" + dir}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("tisync %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func TestPollAndCheckpointCommands(t *testing.T) {
	sim, err := testinvitesim.NewServer(testinvitesim.Options{Tasks: 2, CandidatesPerTask: 15})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	task := sim.TaskIDs()[0]
	dir := t.TempDir()
	env := []string{
		"TISYNC_NATS_EMBEDDED_LISTEN=none",
		"TISYNC_TESTINVITE_BASE_URL=" + sim.URL,
		"TISYNC_TESTINVITE_ORGANIZATION_ID=" + sim.OrganizationID(),
		"TISYNC_TESTINVITE_PRIVATE_KEY=" + sim.Credentials().PrivateKey,
		"TISYNC_TESTINVITE_RATE_LIMIT_RPS=0",
		"TISYNC_LOG_LEVEL=warn",
	}

	out := runTisync(t, dir, env, "poll", "--task", task, "--entity", "ticket", "--dry-run")
	if got := strings.Count(out, "snapshot ticket"); got != 15 {
		t.Errorf("dry run printed %d snapshot lines, want 15:\n%s", got, out)
	}
	if !strings.Contains(out, "dry run: nothing published or stored") {
		t.Errorf("dry-run summary missing:\n%s", out)
	}

	out = runTisync(t, dir, env, "poll", "--task", task)
	for _, want := range []string{"/" + task + "/ticket", "/" + task + "/test_session", "scan        complete", "snapshot    15", "checkpoint  stored"} {
		if !strings.Contains(out, want) {
			t.Errorf("poll summary lacks %q:\n%s", want, out)
		}
	}

	out = runTisync(t, dir, env, "checkpoint", "list")
	if strings.Count(out, task) != 2 {
		t.Errorf("checkpoint list shows %d rows of the task, want 2:\n%s", strings.Count(out, task), out)
	}

	out = runTisync(t, dir, env, "status")
	for _, want := range []string{"TASK", task, "ticket", "test_session", "stream TESTINVITE:", "CHANGES (1h0m0s)"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	out = runTisync(t, dir, env, "status", "--json")
	var report struct {
		Checkpoints []struct {
			TaskID        string  `json:"task_id"`
			Entity        string  `json:"entity"`
			Records       int     `json:"records"`
			RecentChanges *uint64 `json:"recent_changes"`
			State         string  `json:"state"`
		} `json:"checkpoints"`
		Stream struct {
			Events uint64 `json:"events"`
		} `json:"stream"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	for _, c := range report.Checkpoints {
		if c.TaskID == task && c.Entity == "ticket" {
			if c.Records != 15 || c.RecentChanges == nil || *c.RecentChanges != 15 || c.State != "ok" {
				t.Errorf("ticket checkpoint in status: %+v, want 15 records, 15 recent changes, state ok", c)
			}
		}
	}
	if report.Stream.Events == 0 {
		t.Error("status --json shows an empty stream")
	}

	out = runTisync(t, dir, env, "checkpoint", "show", task)
	if !strings.Contains(out, "loggedIn") {
		t.Errorf("checkpoint show lacks the ticket counts by loggedIn:\n%s", out)
	}

	out = runTisync(t, dir, env, "checkpoint", "reset", task, "--entity", "ticket")
	if !strings.Contains(out, "next scan loads a full snapshot") {
		t.Errorf("reset output:\n%s", out)
	}
	out = runTisync(t, dir, env, "poll", "--task", task, "--entity", "ticket")
	if !strings.Contains(out, "snapshot    15") {
		t.Errorf("poll after reset did not reload the snapshot:\n%s", out)
	}
}

func TestPollCommandUsage(t *testing.T) {
	tests := [][]string{
		{"poll"},
		{"poll", "--entity", "task", "--task", "abc"},
		{"poll", "--task", "a.b"},
		{"poll", "--task", "abc", "--entity", "answers"},
	}
	for _, args := range tests {
		cmd := exec.Command(tisyncBinary, args...)
		out, err := cmd.CombinedOutput()
		exit, ok := err.(*exec.ExitError)
		if !ok || exit.ExitCode() != 2 {
			t.Errorf("tisync %s: err = %v, want exit code 2:\n%s", strings.Join(args, " "), err, out)
		}
	}
}
