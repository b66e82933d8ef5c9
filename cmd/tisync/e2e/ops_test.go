package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/tisync/tisync/sink/clickhouse/clickhousetest"
	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// TestOperations checks what an operator watches: the counters of /metrics move when a poll finds
// a change and a batch writes it, and /readyz fails with the ClickHouse check while ClickHouse is
// unreachable and recovers when it is back.
func TestOperations(t *testing.T) {
	t.Parallel()
	var proxy *clickhousetest.Proxy
	s := newStack(t, stackOptions{
		sim: testinvitesim.Options{Seed: 41, Tasks: 2, CandidatesPerTask: 60},
		clickhouseAddr: func(server, _ string) string {
			proxy = clickhousetest.NewProxy(t, server)
			return proxy.Addr()
		},
	})
	s.d.start()
	initial := readTruth(t, s.sim)
	s.wh.waitCaughtUp(t, initial.records, time.Minute)
	s.waitDrained(time.Minute)

	t.Run("metrics", func(t *testing.T) {
		before := s.d.mustMetrics()
		if got := before.sum("tisync_scheduler_running"); got != 1 {
			t.Errorf("tisync_scheduler_running = %v, want 1", got)
		}
		task := s.sim.TaskIDs()[0]
		ids, err := s.sim.CandidateIDs(task)
		if err != nil {
			t.Fatal(err)
		}
		group := "metrics-probe"
		if err := s.sim.UpdateCandidate(task, ids[0], testinvitesim.CandidateUpdate{Group: &group}); err != nil {
			t.Fatal(err)
		}
		s.waitTicketGroup(ids[0], group, time.Minute)
		s.waitDrained(time.Minute)
		after := s.d.mustMetrics()

		counters := []struct {
			name   string
			labels []string
			min    float64
		}{
			{"tisync_poll_runs_total", []string{"entity", "ticket", "result", "ok"}, 1},
			{"tisync_poll_pages_total", []string{"entity", "ticket"}, 1},
			{"tisync_poll_records_total", []string{"entity", "ticket"}, 1},
			{"tisync_poll_changes_total", []string{"entity", "ticket", "op", "updated"}, 1},
			{"tisync_publish_events_total", []string{"entity", "ticket", "op", "updated"}, 1},
			{"tisync_sink_messages_consumed_total", nil, 1},
			{"tisync_sink_flushes_total", nil, 1},
			{"tisync_sink_acks_total", []string{"kind", "ack"}, 1},
			{"tisync_clickhouse_rows_inserted_total", []string{"table", "tickets"}, 1},
			{"tisync_clickhouse_rows_inserted_total", []string{"table", "change_events"}, 1},
		}
		for _, c := range counters {
			delta := after.sum(c.name, c.labels...) - before.sum(c.name, c.labels...)
			if delta < c.min {
				t.Errorf("%s%v grew by %v during a poll and a batch, want at least %v", c.name, c.labels, delta, c.min)
			}
		}
		if _, ok := after["tisync_sink_insert_duration_seconds"]; !ok {
			t.Error("tisync_sink_insert_duration_seconds is missing from /metrics")
		}
	})

	t.Run("readyz", func(t *testing.T) {
		waitReady(t, s.d, http.StatusOK, func(r readyReport) error {
			for _, check := range []string{"nats", "scheduler", "clickhouse"} {
				if r.Checks[check] != "ok" {
					return fmt.Errorf("check %s is %q", check, r.Checks[check])
				}
			}
			return nil
		})

		proxy.Cut()
		report := waitReady(t, s.d, http.StatusServiceUnavailable, func(r readyReport) error {
			if r.Ready {
				return fmt.Errorf("ready is true")
			}
			if r.Checks["clickhouse"] == "ok" || r.Checks["clickhouse"] == "" {
				return fmt.Errorf("check clickhouse is %q", r.Checks["clickhouse"])
			}
			return nil
		})
		t.Logf("while ClickHouse is unreachable: %v", report.Checks)
		if report.Checks["nats"] != "ok" || report.Checks["scheduler"] != "ok" {
			t.Errorf("checks other than clickhouse failed too: %v", report.Checks)
		}

		proxy.Restore(t)
		waitReady(t, s.d, http.StatusOK, func(r readyReport) error {
			if !r.Ready {
				return fmt.Errorf("ready is false: %v", r.Checks)
			}
			return nil
		})

		// The sink writes again after the outage.
		task := s.sim.TaskIDs()[0]
		ids, err := s.sim.CandidateIDs(task)
		if err != nil {
			t.Fatal(err)
		}
		group := "after-outage"
		if err := s.sim.UpdateCandidate(task, ids[1], testinvitesim.CandidateUpdate{Group: &group}); err != nil {
			t.Fatal(err)
		}
		s.waitTicketGroup(ids[1], group, time.Minute)
	})
}

// waitReady polls /readyz until it returns status and a report that check accepts, and returns the
// report. It fails the test after 30 seconds.
func waitReady(t *testing.T, d *daemon, status int, check func(readyReport) error) readyReport {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code, report, err := d.readyz(ctx)
		cancel()
		if err == nil && code == status {
			if err = check(report); err == nil {
				return report
			}
		} else if err == nil {
			err = fmt.Errorf("status %d, report %+v", code, report)
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz did not return %d within 30s: %v", status, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitTicketGroup waits until the current row of a ticket has the group name group.
func (s *stack) waitTicketGroup(ticketID, group string, timeout time.Duration) {
	s.t.Helper()
	if err := s.ticketGroupWithin(ticketID, group, timeout); err != nil {
		s.t.Fatal(err)
	}
}

// ticketGroupWithin waits until the current row of a ticket has the group name group, and returns
// an error when the timeout passes first.
func (s *stack) ticketGroupWithin(ticketID, group string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var got string
		err := s.wh.conn.QueryRow(ctx, "SELECT group_name FROM "+s.wh.db+".tickets FINAL WHERE ticket_id = ?", ticketID).Scan(&got)
		cancel()
		if err == nil && got == group {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ticket %s did not get group %q within %s: group %q, %v", ticketID, group, timeout, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
