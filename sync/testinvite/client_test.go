package testinvite_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tisync/tisync/sync/testinvite"
	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

func TestGetRecordsMatchTruth(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 7, Tasks: 2, CandidatesPerTask: 5})
	c, _ := newClient(t, testConfig(srv))
	ctx := ctxT(t)

	taskID := srv.TaskIDs()[0]
	task, err := c.GetTask(ctx, taskID)
	if err != nil {
		t.Fatalf("get task: %v", err)
	}
	want, _ := srv.Record(testinvitesim.EntityTask, taskID, taskID)
	if !bytes.Equal(task.Raw, want) {
		t.Errorf("task raw = %s, want %s", task.Raw, want)
	}
	if task.ID != taskID || len(task.Steps) == 0 || task.OrganizationID != srv.OrganizationID() {
		t.Errorf("task typed fields = id %q steps %d org %q", task.ID, len(task.Steps), task.OrganizationID)
	}

	candIDs, _ := srv.CandidateIDs(taskID)
	cand, err := c.GetCandidate(ctx, taskID, candIDs[0])
	if err != nil {
		t.Fatalf("get candidate: %v", err)
	}
	want, _ = srv.Record(testinvitesim.EntityTicket, taskID, candIDs[0])
	if !bytes.Equal(cand.Raw, want) {
		t.Errorf("candidate raw = %s, want %s", cand.Raw, want)
	}
	if cand.ID != candIDs[0] || cand.TaskID != taskID {
		t.Errorf("candidate = id %q task %q", cand.ID, cand.TaskID)
	}

	sessIDs, _ := srv.SessionIDs(taskID)
	ti, err := c.GetTestInstance(ctx, taskID, sessIDs[0])
	if err != nil {
		t.Fatalf("get test instance: %v", err)
	}
	want, _ = srv.Record(testinvitesim.EntityTestSession, taskID, sessIDs[0])
	if !bytes.Equal(ti.Raw, want) {
		t.Errorf("test instance raw = %s, want %s", ti.Raw, want)
	}
	if ti.ID != sessIDs[0] || !ti.Status.Known() || ti.Result.Available != (ti.Status == testinvite.StatusComplete) {
		t.Errorf("test instance = id %q status %q result available %v", ti.ID, ti.Status, ti.Result.Available)
	}
}

func TestBasicModeOmitsDetails(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 3, Tasks: 1, CandidatesPerTask: 3})
	c, _ := newClient(t, testConfig(srv))
	basic := c.WithMode(testinvite.ModeBasic)
	taskID := srv.TaskIDs()[0]
	task, err := basic.GetTask(ctxT(t), taskID)
	if err != nil {
		t.Fatalf("get task: %v", err)
	}
	if bytes.Contains(task.Raw, []byte(`"steps"`)) || task.Title == "" {
		t.Errorf("basic task = %s", task.Raw)
	}
	if c.Mode() != testinvite.ModeDetailed {
		t.Errorf("original client mode = %q, want detailed", c.Mode())
	}
}

func TestListEndpointsMatchSimulator(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 11, Tasks: 4, CandidatesPerTask: 37})
	c, _ := newClient(t, testConfig(srv))
	ctx := ctxT(t)
	taskID := srv.TaskIDs()[1]

	tasks, stats, err := c.ListTasks(testinvite.TaskQuery{PageSize: 3}).Collect(ctx)
	if err != nil {
		t.Fatalf("list tasks: %v", err)
	}
	if got := ids(tasks, func(x testinvite.Task) string { return x.ID }); !slices.Equal(got, srv.TaskIDs()) {
		t.Errorf("task ids = %v, want %v", got, srv.TaskIDs())
	}
	if !stats.Exhaustive() || stats.Pages != 2 {
		t.Errorf("task scan stats = %+v", stats)
	}

	cands, stats, err := c.ListCandidates(taskID, testinvite.CandidateQuery{PageSize: 10}).Collect(ctx)
	if err != nil {
		t.Fatalf("list candidates: %v", err)
	}
	wantCands, _ := srv.CandidateIDs(taskID)
	if got := ids(cands, func(x testinvite.Candidate) string { return x.ID }); !slices.Equal(got, wantCands) {
		t.Errorf("candidate ids = %v, want %v", got, wantCands)
	}
	if stats.Pages != 4 || stats.FirstTotals.Items != 37 || !stats.Exhaustive() {
		t.Errorf("candidate scan stats = %+v", stats)
	}

	sessions, stats, err := c.ListTestInstances(taskID, testinvite.TestInstanceQuery{PageSize: 7}).Collect(ctx)
	if err != nil {
		t.Fatalf("list test instances: %v", err)
	}
	wantSess, _ := srv.SessionIDs(taskID)
	if got := ids(sessions, func(x testinvite.TestInstance) string { return x.ID }); !slices.Equal(got, wantSess) {
		t.Errorf("test instance ids differ: got %d, want %d", len(got), len(wantSess))
	}
	if !stats.Exhaustive() {
		t.Errorf("test instance scan stats = %+v", stats)
	}

	searched, stats, err := c.SearchTestInstances(taskID, testinvite.TestInstanceSearch{PageSize: 7}).Collect(ctx)
	if err != nil {
		t.Fatalf("search test instances: %v", err)
	}
	if got := ids(searched, func(x testinvite.TestInstance) string { return x.ID }); !slices.Equal(got, wantSess) {
		t.Errorf("searched ids differ: got %d, want %d", len(got), len(wantSess))
	}
	if stats.FirstTotals.Known || !stats.Exhaustive() {
		t.Errorf("search stats = %+v", stats)
	}
}

func TestListFilters(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 5, Tasks: 3, CandidatesPerTask: 30})
	c, _ := newClient(t, testConfig(srv))
	ctx := ctxT(t)
	taskID := srv.TaskIDs()[0]
	all, _, err := c.ListCandidates(taskID, testinvite.CandidateQuery{}).Collect(ctx)
	if err != nil {
		t.Fatalf("list candidates: %v", err)
	}
	target := all[len(all)/2]

	t.Run("candidate by code", func(t *testing.T) {
		got, _, err := c.ListCandidates(taskID, testinvite.CandidateQuery{Code: target.InvitationCode, PageSize: 1}).Collect(ctx)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(got) != 1 || got[0].ID != target.ID {
			t.Errorf("got %d candidates, want only %s", len(got), target.ID)
		}
	})
	t.Run("candidate by email", func(t *testing.T) {
		got, _, err := c.ListCandidates(taskID, testinvite.CandidateQuery{Email: target.Email}).Collect(ctx)
		if err != nil || len(got) != 1 || got[0].ID != target.ID {
			t.Errorf("got %d candidates, err %v", len(got), err)
		}
	})
	t.Run("test instances of candidate", func(t *testing.T) {
		sid, err := srv.StartSession(taskID, target.ID, "")
		if err != nil {
			t.Fatalf("start session: %v", err)
		}
		got, _, err := c.ListTestInstances(taskID, testinvite.TestInstanceQuery{CandidateID: target.ID, PageSize: 1}).Collect(ctx)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		if len(got) == 0 || got[0].ID != sid {
			t.Fatalf("got %d test instances, want the new one %s first", len(got), sid)
		}
		for _, ti := range got {
			if ti.TicketID != target.ID {
				t.Errorf("test instance %s belongs to %s", ti.ID, ti.TicketID)
			}
		}
	})
	t.Run("candidate and external id rejected", func(t *testing.T) {
		_, err := c.ListTestInstances(taskID, testinvite.TestInstanceQuery{CandidateID: target.ID, ExternalID: "x"}).Next(ctx)
		if err == nil {
			t.Fatal("combined filters accepted")
		}
	})
	t.Run("tasks by title", func(t *testing.T) {
		tasks, _, err := c.ListTasks(testinvite.TaskQuery{}).Collect(ctx)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		title := strings.ToUpper(tasks[0].Title)
		got, _, err := c.ListTasks(testinvite.TaskQuery{Title: title}).Collect(ctx)
		if err != nil || len(got) != 1 || got[0].ID != tasks[0].ID {
			t.Errorf("title filter gave %d tasks, err %v", len(got), err)
		}
	})
	t.Run("task filter", func(t *testing.T) {
		tasks, _, _ := c.ListTasks(testinvite.TaskQuery{}).Collect(ctx)
		fav := tasks[0].Favorite
		got, _, err := c.FilterTasks(testinvite.TaskFilter{Favorite: &fav, Folder: []string{tasks[0].Folder}}).Collect(ctx)
		if err != nil {
			t.Fatalf("filter: %v", err)
		}
		if !slices.ContainsFunc(got, func(x testinvite.Task) bool { return x.ID == tasks[0].ID }) {
			t.Errorf("filter result lacks task %s", tasks[0].ID)
		}
		for _, x := range got {
			if x.Favorite != fav || x.Folder != tasks[0].Folder {
				t.Errorf("task %s does not match the filter", x.ID)
			}
		}
	})
	t.Run("search by status and window", func(t *testing.T) {
		all, _, _ := c.ListTestInstances(taskID, testinvite.TestInstanceQuery{}).Collect(ctx)
		want := 0
		for _, ti := range all {
			if ti.Status == testinvite.StatusComplete {
				want++
			}
		}
		got, _, err := c.SearchTestInstances(taskID, testinvite.TestInstanceSearch{
			Status: testinvite.StatusComplete, From: time.Unix(0, 0), To: time.Now().Add(24 * time.Hour), PageSize: 4,
		}).Collect(ctx)
		if err != nil {
			t.Fatalf("search: %v", err)
		}
		if len(got) != want || want == 0 {
			t.Errorf("search found %d complete test instances, want %d", len(got), want)
		}
	})
	t.Run("search info by code", func(t *testing.T) {
		got, _, err := c.SearchTestInstances(taskID, testinvite.TestInstanceSearch{Kind: testinvite.SearchInfo, Code: target.InvitationCode}).Collect(ctx)
		if err != nil {
			t.Fatalf("search: %v", err)
		}
		if len(got) == 0 {
			t.Error("info search found nothing")
		}
		for _, ti := range got {
			if ti.TicketID != target.ID {
				t.Errorf("test instance %s belongs to %s", ti.ID, ti.TicketID)
			}
		}
	})
	t.Run("search fields of wrong kind", func(t *testing.T) {
		_, err := c.SearchTestInstances(taskID, testinvite.TestInstanceSearch{Kind: testinvite.SearchInfo, Group: "x"}).Next(ctx)
		if err == nil {
			t.Fatal("info search with group accepted")
		}
	})
}

func TestCandidateLifecycle(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 9, Tasks: 1, CandidatesPerTask: 2})
	c, _ := newClient(t, testConfig(srv))
	ctx := ctxT(t)
	taskID := srv.TaskIDs()[0]

	created, err := c.CreateCandidate(ctx, taskID, testinvite.NewCandidate{
		Kind: testinvite.KindTemporaryCandidate, Fullname: "Ada Lovelace", Email: "ada@example.com",
		Labels: []string{"b", "a"}, Tracking: &testinvite.Tracking{UniqID: "ada-1"},
	})
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if created.Fullname != "Ada Lovelace" || created.Group != "default" || !slices.Equal(created.Labels, []string{"b", "a"}) || created.InvitationCode == "" {
		t.Errorf("created = %s", created.Raw)
	}

	_, err = c.CreateCandidate(ctx, taskID, testinvite.NewCandidate{Kind: testinvite.KindTemporaryCandidate, Tracking: &testinvite.Tracking{UniqID: "ada-1"}})
	if !errors.Is(err, testinvite.ErrBadRequest) {
		t.Errorf("duplicate uniq id: err = %v, want ErrBadRequest", err)
	}

	group := "Engineering"
	updated, err := c.UpdateCandidate(ctx, taskID, created.ID, testinvite.CandidateUpdate{Fields: testinvite.CandidateFields{
		Group: &group, Labels: &testinvite.LabelChange{Add: []string{"c"}, Remove: []string{"b"}},
	}})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if updated.Group != group || !slices.Equal(updated.Labels, []string{"a", "c"}) {
		t.Errorf("updated = %s", updated.Raw)
	}

	if err := c.DeleteCandidate(ctx, taskID, created.ID); err != nil {
		t.Fatalf("delete untouched candidate: %v", err)
	}
	if _, err := c.GetCandidate(ctx, taskID, created.ID); !errors.Is(err, testinvite.ErrNotFound) {
		t.Errorf("get deleted candidate: err = %v, want ErrNotFound", err)
	}

	touched, _ := srv.AddCandidate(taskID, testinvitesim.CandidateSpec{Fullname: "Alan Turing"})
	if _, err := srv.StartSession(taskID, touched, ""); err != nil {
		t.Fatalf("start session: %v", err)
	}
	err = c.DeleteCandidate(ctx, taskID, touched)
	var apiErr *testinvite.APIError
	if !errors.Is(err, testinvite.ErrForbidden) || !errors.As(err, &apiErr) || apiErr.Endpoint != testinvite.EndpointDeleteCandidate {
		t.Errorf("delete touched candidate: err = %v, want ErrForbidden from %s", err, testinvite.EndpointDeleteCandidate)
	}
}

func TestExpandTestInstance(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 4, Tasks: 1, CandidatesPerTask: 4})
	c, _ := newClient(t, testConfig(srv))
	taskID := srv.TaskIDs()[0]
	sessIDs, _ := srv.SessionIDs(taskID)
	ti, err := c.ExpandTestInstance(ctxT(t), taskID, sessIDs[0], testinvite.ExpandTest, testinvite.ExpandUniqID, testinvite.ExpandCreditCost, testinvite.ExpandIdentityPhoto, testinvite.ExpandRoomForm)
	if err != nil {
		t.Fatalf("expand: %v", err)
	}
	if ti.Test == nil || ti.Test.TestID == "" || ti.UniqID == "" || ti.CreditCost == nil || ti.IdentityPhoto == nil || ti.RoomForm == nil {
		t.Errorf("expanded = %s", ti.Raw)
	}
	detailed, _ := srv.Record(testinvitesim.EntityTestSession, taskID, sessIDs[0])
	if !bytes.HasPrefix(ti.Raw, detailed[:len(detailed)-1]) {
		t.Errorf("expanded record does not extend the detailed one:\n%s\n%s", ti.Raw, detailed)
	}
}

func TestInvalidIDRejectedBeforeRequest(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 1, Tasks: 1, CandidatesPerTask: 1})
	c, _ := newClient(t, testConfig(srv))
	before := srv.Stats().Total
	for _, id := range []string{"", "../tasks", "a b", "x?y=1", "ümlaut"} {
		if _, err := c.GetTask(ctxT(t), id); !errors.Is(err, testinvite.ErrInvalidID) {
			t.Errorf("GetTask(%q): err = %v, want ErrInvalidID", id, err)
		}
	}
	if _, err := c.ListCandidates("a/b", testinvite.CandidateQuery{}).Next(ctxT(t)); !errors.Is(err, testinvite.ErrInvalidID) {
		t.Errorf("ListCandidates: err = %v, want ErrInvalidID", err)
	}
	if got := srv.Stats().Total - before; got != 0 {
		t.Errorf("%d requests sent for invalid ids", got)
	}
}

func TestAuthSchemes(t *testing.T) {
	cases := []struct {
		name   string
		sim    testinvitesim.Credentials
		config func(*testinvite.Config)
	}{
		{"basic", testinvitesim.Credentials{Scheme: testinvitesim.AuthBasic}, func(*testinvite.Config) {}},
		{"bearer", testinvitesim.Credentials{Scheme: testinvitesim.AuthBearer, Token: "tok-123"}, func(c *testinvite.Config) {
			c.Auth.Scheme = testinvite.SchemeBearer
		}},
		{"headers", testinvitesim.Credentials{Scheme: testinvitesim.AuthHeaders, Headers: map[string]string{
			"X-Organization-Id": "{organization_id}", "X-Private-Key": "{private_key}",
		}}, func(c *testinvite.Config) {
			c.Auth = testinvite.AuthConfig{Scheme: testinvite.SchemeHeaders, Headers: map[string]string{
				"x-organization-id": "{organization_id}", "X-Private-Key": "{private_key}",
			}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startSim(t, testinvitesim.Options{Seed: 2, Tasks: 1, CandidatesPerTask: 1, Credentials: tc.sim})
			cfg := testConfig(srv)
			tc.config(&cfg)
			c, _ := newClient(t, cfg)
			if _, err := c.GetTask(ctxT(t), srv.TaskIDs()[0]); err != nil {
				t.Errorf("with the right credentials: %v", err)
			}
			cfg.PrivateKey = "wrong-private-key-0000"
			cfg.Token = "wrong-token-0000"
			c, _ = newClient(t, cfg)
			if _, err := c.GetTask(ctxT(t), srv.TaskIDs()[0]); !errors.Is(err, testinvite.ErrUnauthorized) {
				t.Errorf("with wrong credentials: err = %v, want ErrUnauthorized", err)
			}
		})
	}
}

func TestUnauthorizedKeepsKeySecret(t *testing.T) {
	const key = "super-secret-private-key-4f1c"
	srv := startSim(t, testinvitesim.Options{Seed: 2, Tasks: 1, CandidatesPerTask: 1})
	cfg := testConfig(srv)
	cfg.PrivateKey = key
	c, logs := newClient(t, cfg)
	before := srv.Stats().Total

	_, err := c.GetTask(ctxT(t), srv.TaskIDs()[0])
	var apiErr *testinvite.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || !errors.Is(err, testinvite.ErrUnauthorized) {
		t.Fatalf("err = %v, want a 401 *APIError", err)
	}
	if got := srv.Stats().Total - before; got != 1 {
		t.Errorf("401 sent %d requests, want 1 (no retry)", got)
	}
	_, _, lerr := c.LegacyFetchTasks(ctxT(t))
	for _, text := range []string{err.Error(), lerr.Error(), cfg.PrivateKey.String(), mustJSON(t, cfg)} {
		if strings.Contains(text, key) {
			t.Errorf("private key in %q", text)
		}
	}
	for _, e := range logs.All() {
		if strings.Contains(e.Message, key) || strings.Contains(mustJSON(t, e.ContextMap()), key) {
			t.Errorf("private key in log entry %q", e.Message)
		}
	}
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

func ids[T any](records []T, id func(T) string) []string {
	out := make([]string, len(records))
	for i, r := range records {
		out[i] = id(r)
	}
	return out
}

func TestWrappedResponses(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 19, Tasks: 2, CandidatesPerTask: 25, WrapPayload: true})
	c, _ := newClient(t, testConfig(srv))
	ctx := ctxT(t)
	taskID := srv.TaskIDs()[0]

	task, err := c.GetTask(ctx, taskID)
	want, _ := srv.Record(testinvitesim.EntityTask, taskID, taskID)
	if err != nil || !bytes.Equal(task.Raw, want) {
		t.Errorf("get task: %v, raw %s", err, task.Raw)
	}
	cands, st, err := c.ListCandidates(taskID, testinvite.CandidateQuery{PageSize: 10}).Collect(ctx)
	if err != nil || len(cands) != 25 || !st.Exhaustive() {
		t.Errorf("list candidates: %d records, %v, stats %+v", len(cands), err, st)
	}
	want, _ = srv.Record(testinvitesim.EntityTicket, taskID, cands[0].ID)
	if !bytes.Equal(cands[0].Raw, want) {
		t.Errorf("candidate raw = %s, want %s", cands[0].Raw, want)
	}
	sessions, _, err := c.SearchTestInstances(taskID, testinvite.TestInstanceSearch{PageSize: 7}).Collect(ctx)
	wantSess, _ := srv.SessionIDs(taskID)
	if err != nil || len(sessions) != len(wantSess) {
		t.Errorf("search: %d records, want %d, %v", len(sessions), len(wantSess), err)
	}
	if _, err := c.ExpandTestInstance(ctx, taskID, wantSess[0], testinvite.ExpandTest); err != nil {
		t.Errorf("expand: %v", err)
	}
	created, err := c.CreateCandidate(ctx, taskID, testinvite.NewCandidate{Kind: testinvite.KindTemporaryCandidate, Fullname: "W"})
	if err != nil || created.ID == "" {
		t.Fatalf("create: %+v, %v", created, err)
	}
	if err := c.DeleteCandidate(ctx, taskID, created.ID); err != nil {
		t.Errorf("delete: %v", err)
	}
}
