package testinvite_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/tisync/tisync/sync/testinvite"
	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

func TestLegacyEndpoints(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 17, Tasks: 3, CandidatesPerTask: 4, Legacy: true})
	c, _ := newClient(t, testConfig(srv))
	ctx := ctxT(t)
	taskID := srv.TaskIDs()[0]

	tasks, resp, err := c.LegacyFetchTasks(ctx)
	if err != nil {
		t.Fatalf("fetch tasks: %v", err)
	}
	if got := ids(tasks, func(x testinvite.Task) string { return x.ID }); !slices.Equal(got, srv.TaskIDs()) {
		t.Errorf("tasks = %v, want %v", got, srv.TaskIDs())
	}
	if resp.Kind != testinvitesim.LegacyKindSuccess {
		t.Errorf("kind = %q", resp.Kind)
	}

	users := []testinvite.LegacyUser{{Fullname: "Ada Lovelace", Email: "ada@example.com"}, {Fullname: "Alan Turing", Labels: []string{"x"}}}
	tickets, _, err := c.LegacyCreateTickets(ctx, taskID, users, testinvite.LegacyTicketOptions{})
	if err != nil {
		t.Fatalf("create tickets: %v", err)
	}
	if len(tickets) != 2 || tickets[0].TicketID == "" || tickets[0].AccessURL == "" {
		t.Fatalf("tickets = %+v", tickets)
	}
	cand, err := c.GetCandidate(ctx, taskID, tickets[1].TicketID)
	if err != nil || cand.Fullname != "Alan Turing" {
		t.Errorf("created ticket as candidate = %+v, %v", cand.Fullname, err)
	}

	candIDs, _ := srv.CandidateIDs(taskID)
	resp, err = c.LegacyQueryTestResults(ctx, taskID, []testinvite.LegacyTicketQuery{{TicketID: candIDs[len(candIDs)-1]}})
	if err != nil {
		t.Fatalf("query test results: %v", err)
	}
	var payload struct {
		Results []struct {
			TicketID string `json:"ticketId"`
			Found    bool   `json:"found"`
		} `json:"results"`
	}
	if err := json.Unmarshal(resp.Payload, &payload); err != nil || len(payload.Results) != 1 || !payload.Results[0].Found {
		t.Errorf("payload = %s, %v", resp.Payload, err)
	}
}

func TestLegacyTooManyUsers(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 17, Tasks: 1, Legacy: true})
	c, _ := newClient(t, testConfig(srv))
	before := srv.Stats().Total
	users := make([]testinvite.LegacyUser, testinvite.LegacyMaxUsers+1)
	for i := range users {
		users[i].Fullname = "X"
	}
	_, _, err := c.LegacyCreateTickets(ctxT(t), srv.TaskIDs()[0], users, testinvite.LegacyTicketOptions{})
	if !errors.Is(err, testinvite.ErrTooManyUsers) {
		t.Errorf("err = %v, want ErrTooManyUsers", err)
	}
	if got := srv.Stats().Total - before; got != 0 {
		t.Errorf("%d requests sent", got)
	}
	if _, _, err := c.LegacyCreateTickets(ctxT(t), srv.TaskIDs()[0], users[:200], testinvite.LegacyTicketOptions{}); err != nil {
		t.Errorf("200 users: %v", err)
	}
}

func TestLegacyWrongKey(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 17, Tasks: 1, Legacy: true})
	cfg := testConfig(srv)
	cfg.PrivateKey = "not-the-key"
	c, _ := newClient(t, cfg)
	_, _, err := c.LegacyFetchTasks(ctxT(t))
	if !errors.Is(err, testinvite.ErrUnauthorized) {
		t.Errorf("err = %v, want ErrUnauthorized", err)
	}
}

func TestLegacyFailureKind(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"kind":"invalid-requester","payload":{"reason":"unknown organization"}}`)
	}))
	t.Cleanup(hs.Close)
	cfg := testinvite.DefaultConfig()
	cfg.BaseURL, cfg.OrganizationID, cfg.PrivateKey, cfg.RateLimit.RPS = hs.URL, "org1", "k", 0
	c, _ := newClient(t, cfg)
	_, _, err := c.LegacyFetchTasks(ctxT(t))
	var le *testinvite.LegacyError
	if !errors.As(err, &le) || le.Kind != "invalid-requester" || !errors.Is(err, testinvite.ErrLegacyKind) {
		t.Errorf("err = %v, want a LegacyError with the kind", err)
	}
}
