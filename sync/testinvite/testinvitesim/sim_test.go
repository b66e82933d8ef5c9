package testinvitesim_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

const rest = "/api/integration/rest/v1"

func start(t testing.TB, opts testinvitesim.Options) *testinvitesim.Server {
	t.Helper()
	srv, err := testinvitesim.NewServer(opts)
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// do sends a request with the simulator's basic credentials and returns status and body.
func do(t testing.TB, srv *testinvitesim.Server, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", srv.BasicAuthorization())
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp.StatusCode, b
}

type offsetPage struct {
	Candidates    []map[string]any `json:"candidates"`
	TestInstances []map[string]any `json:"testInstances"`
	Tasks         []map[string]any `json:"tasks"`
	Pagination    struct {
		TotalItems  int     `json:"totalItems"`
		TotalPages  int     `json:"totalPages"`
		CurrentPage int     `json:"currentPage"`
		Limit       int     `json:"limit"`
		Next        *string `json:"next"`
		Previous    *string `json:"previous"`
		LastDocID   *string `json:"lastDocId"`
	} `json:"pagination"`
}

func decode(t testing.TB, body []byte) offsetPage {
	t.Helper()
	var p offsetPage
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return p
}

func TestListDefaults(t *testing.T) {
	srv := start(t, testinvitesim.Options{Seed: 1, Tasks: 1, CandidatesPerTask: 25})
	taskID := srv.TaskIDs()[0]
	status, body := do(t, srv, "GET", rest+"/tasks/"+taskID+"/candidates", "")
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	p := decode(t, body)
	pg := p.Pagination
	if len(p.Candidates) != 10 || pg.TotalItems != 25 || pg.TotalPages != 3 || pg.CurrentPage != 1 || pg.Limit != 10 {
		t.Errorf("page = %d records, pagination %+v", len(p.Candidates), pg)
	}
	if pg.Next == nil || *pg.Next != "?limit=10&page=2&mode=basic" || pg.Previous != nil {
		t.Errorf("next %v previous %v", pg.Next, pg.Previous)
	}
	if _, detailed := p.Candidates[0]["organizationId"]; detailed {
		t.Error("default mode returned detailed records")
	}
	want, _ := srv.CandidateIDs(taskID)
	if p.Candidates[0]["candidateId"] != want[0] {
		t.Errorf("first candidate %v, want the newest %s", p.Candidates[0]["candidateId"], want[0])
	}

	_, body = do(t, srv, "GET", rest+"/tasks/"+taskID+"/candidates?limit=10&page=3&mode=detailed", "")
	p = decode(t, body)
	if len(p.Candidates) != 5 || p.Pagination.Next != nil || p.Pagination.Previous == nil || *p.Pagination.Previous != "?limit=10&page=2&mode=detailed" {
		t.Errorf("last page = %d records, pagination %+v", len(p.Candidates), p.Pagination)
	}
	if _, detailed := p.Candidates[0]["organizationId"]; !detailed {
		t.Error("detailed mode returned basic records")
	}

	status, body = do(t, srv, "GET", rest+"/tasks/"+taskID+"/candidates?page=9", "")
	p = decode(t, body)
	if status != 200 || len(p.Candidates) != 0 || p.Pagination.Next != nil {
		t.Errorf("page beyond range = %d, %s", status, body)
	}
}

func TestErrorStatuses(t *testing.T) {
	srv := start(t, testinvitesim.Options{Seed: 1, Tasks: 1, CandidatesPerTask: 3})
	taskID := srv.TaskIDs()[0]
	candIDs, _ := srv.CandidateIDs(taskID)
	base := rest + "/tasks/" + taskID
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"limit zero", "GET", base + "/candidates?limit=0", "", 400},
		{"limit negative", "GET", base + "/candidates?limit=-3", "", 400},
		{"limit text", "GET", base + "/test-instances?limit=ten", "", 400},
		{"page zero", "GET", base + "/candidates?page=0", "", 400},
		{"page text", "GET", "/api/integration/rest/v1/tasks?page=two", "", 400},
		{"unknown mode", "GET", base + "?mode=full", "", 400},
		{"candidate and external id", "GET", base + "/test-instances?candidateId=" + candIDs[0] + "&externalId=x", "", 400},
		{"search without kind", "POST", base + "/test-instances/filter", `{}`, 400},
		{"search unknown status", "POST", base + "/test-instances/filter", `{"kind":"meta","status":"DONE"}`, 400},
		{"search unknown cursor", "POST", base + "/test-instances/filter?lastDocId=AAAAAAAAAAAAAAAAAAAA", `{"kind":"meta"}`, 400},
		{"search malformed body", "POST", base + "/test-instances/filter", `{"kind":`, 400},
		{"create without kind", "POST", base + "/candidates", `{"fullname":"x"}`, 400},
		{"patch unknown step", "PATCH", base + "/candidates/" + candIDs[0], `{"fields":{},"steps":{"nope":{}}}`, 400},
		{"expand unknown keyword", "POST", "/api/integration/rest/tasks/" + taskID + "/test-instances/AAAAAAAAAAAAAAAAAAAA/expand", `{"expand":["all"]}`, 400},
		{"unknown task", "GET", rest + "/tasks/AAAAAAAAAAAAAAAAAAAA", "", 404},
		{"unknown task candidates", "GET", rest + "/tasks/nope/candidates", "", 404},
		{"unknown candidate", "GET", base + "/candidates/AAAAAAAAAAAAAAAAAAAA", "", 404},
		{"unknown test instance", "GET", base + "/test-instances/AAAAAAAAAAAAAAAAAAAA", "", 404},
		{"unknown route", "GET", "/api/integration/rest/v1/organizations", "", 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := do(t, srv, tc.method, tc.path, tc.body)
			if status != tc.want {
				t.Errorf("status %d, want %d: %s", status, tc.want, body)
			}
			var e struct {
				Status  int    `json:"status"`
				Message string `json:"message"`
			}
			if json.Unmarshal(body, &e) != nil || e.Status != tc.want || e.Message == "" {
				t.Errorf("error body %s", body)
			}
		})
	}
}

func TestCredentialCheck(t *testing.T) {
	cases := []struct {
		name  string
		creds testinvitesim.Credentials
		good  func(*http.Request, *testinvitesim.Server)
	}{
		{"basic", testinvitesim.Credentials{Scheme: "basic"}, func(r *http.Request, s *testinvitesim.Server) {
			r.SetBasicAuth(s.OrganizationID(), s.Credentials().PrivateKey)
		}},
		{"bearer", testinvitesim.Credentials{Scheme: "bearer", Token: "t0ken"}, func(r *http.Request, s *testinvitesim.Server) {
			r.Header.Set("Authorization", "Bearer t0ken")
		}},
		{"headers", testinvitesim.Credentials{Scheme: "headers"}, func(r *http.Request, s *testinvitesim.Server) {
			r.Header.Set("X-Organization-Id", s.OrganizationID())
			r.Header.Set("X-Private-Key", s.Credentials().PrivateKey)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := start(t, testinvitesim.Options{Seed: 1, Tasks: 1, Credentials: tc.creds})
			send := func(auth func(*http.Request)) int {
				req, _ := http.NewRequest("GET", srv.URL+rest+"/tasks", nil)
				auth(req)
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				return resp.StatusCode
			}
			if got := send(func(r *http.Request) { tc.good(r, srv) }); got != 200 {
				t.Errorf("right credentials: status %d", got)
			}
			if got := send(func(*http.Request) {}); got != 401 {
				t.Errorf("no credentials: status %d, want 401", got)
			}
			if got := send(func(r *http.Request) {
				r.SetBasicAuth(srv.OrganizationID(), "wrong")
				r.Header.Set("X-Private-Key", "wrong")
			}); got != 401 {
				t.Errorf("wrong credentials: status %d, want 401", got)
			}
		})
	}
}

func TestDeleteRule(t *testing.T) {
	srv := start(t, testinvitesim.Options{Seed: 1, Tasks: 1, CandidatesPerTask: 1})
	taskID := srv.TaskIDs()[0]
	base := rest + "/tasks/" + taskID + "/candidates/"

	untouched, _ := srv.AddCandidate(taskID, testinvitesim.CandidateSpec{Fullname: "A"})
	loggedIn, _ := srv.AddCandidate(taskID, testinvitesim.CandidateSpec{Fullname: "B"})
	yes := true
	srv.UpdateCandidate(taskID, loggedIn, testinvitesim.CandidateUpdate{LoggedIn: &yes})
	withSession, _ := srv.AddCandidate(taskID, testinvitesim.CandidateSpec{Fullname: "C"})
	srv.StartSession(taskID, withSession, "")
	no := false
	srv.UpdateCandidate(taskID, withSession, testinvitesim.CandidateUpdate{LoggedIn: &no})

	if status, body := do(t, srv, "DELETE", base+untouched, ""); status != 200 || string(body) != "{}" {
		t.Errorf("delete untouched: %d %s", status, body)
	}
	if status, _ := do(t, srv, "GET", base+untouched, ""); status != 404 {
		t.Errorf("get deleted: %d, want 404", status)
	}
	if status, _ := do(t, srv, "DELETE", base+untouched, ""); status != 404 {
		t.Errorf("delete twice: %d, want 404", status)
	}
	for name, id := range map[string]string{"logged in": loggedIn, "with test instance": withSession} {
		if status, _ := do(t, srv, "DELETE", base+id, ""); status != 403 {
			t.Errorf("delete %s: %d, want 403", name, status)
		}
	}
}

func TestBothPathForms(t *testing.T) {
	srv := start(t, testinvitesim.Options{Seed: 1, Tasks: 2, CandidatesPerTask: 2})
	taskID := srv.TaskIDs()[0]
	sessIDs, _ := srv.SessionIDs(taskID)
	for _, prefix := range []string{"/api/integration/rest/v1", "/api/integration/rest"} {
		for _, c := range []struct{ method, path, body string }{
			{"POST", "/tasks/filter", `{}`},
			{"GET", "/tasks/" + taskID, ""},
			{"GET", "/tasks/" + taskID + "/candidates", ""},
			{"POST", "/tasks/" + taskID + "/test-instances/" + sessIDs[0] + "/expand", `{"expand":["test"]}`},
		} {
			if status, body := do(t, srv, c.method, prefix+c.path, c.body); status != 200 {
				t.Errorf("%s %s%s: %d %s", c.method, prefix, c.path, status, body)
			}
		}
	}
}

func TestWrapPayload(t *testing.T) {
	srv := start(t, testinvitesim.Options{Seed: 1, Tasks: 1, CandidatesPerTask: 2, WrapPayload: true})
	taskID := srv.TaskIDs()[0]
	_, body := do(t, srv, "GET", rest+"/tasks/"+taskID+"?mode=detailed", "")
	want, _ := srv.Record(testinvitesim.EntityTask, taskID, taskID)
	if string(body) != `{"payload":`+string(want)+`}` {
		t.Errorf("wrapped body = %s", body)
	}
	candIDs, _ := srv.CandidateIDs(taskID)
	srv.AddCandidate(taskID, testinvitesim.CandidateSpec{})
	ids, _ := srv.CandidateIDs(taskID)
	if _, body := do(t, srv, "DELETE", rest+"/tasks/"+taskID+"/candidates/"+ids[0], ""); string(body) != `{"payload":{}}` {
		t.Errorf("wrapped delete = %s (candidates before %v)", body, candIDs)
	}
	if status, body := do(t, srv, "GET", rest+"/tasks/nope", ""); status != 404 || !bytes.HasPrefix(body, []byte(`{"payload":{"status":404`)) {
		t.Errorf("wrapped error = %d %s", status, body)
	}
}

func TestCursorSearch(t *testing.T) {
	srv := start(t, testinvitesim.Options{Seed: 6, Tasks: 1, CandidatesPerTask: 20, Sessions: 47})
	taskID := srv.TaskIDs()[0]
	want, _ := srv.SessionIDs(taskID)
	var got []string
	cursor := ""
	for i := 0; i < 20; i++ {
		path := rest + "/tasks/" + taskID + "/test-instances/filter?limit=10"
		if cursor != "" {
			path += "&lastDocId=" + cursor
		}
		status, body := do(t, srv, "POST", path, `{"kind":"meta"}`)
		if status != 200 {
			t.Fatalf("status %d: %s", status, body)
		}
		p := decode(t, body)
		for _, r := range p.TestInstances {
			got = append(got, r["testInstanceId"].(string))
		}
		if p.Pagination.LastDocID == nil {
			if p.Pagination.Next != nil {
				t.Errorf("next %q without cursor", *p.Pagination.Next)
			}
			break
		}
		cursor = *p.Pagination.LastDocID
		if *p.Pagination.Next != "?limit=10&lastDocId="+cursor+"&mode=basic" || cursor != got[len(got)-1] {
			t.Errorf("cursor %q next %q", cursor, *p.Pagination.Next)
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("search returned %d ids, want %d in API order", len(got), len(want))
	}
}

func TestSearchWindowInMilliseconds(t *testing.T) {
	srv := start(t, testinvitesim.Options{Seed: 6, Tasks: 1, CandidatesPerTask: 5})
	taskID := srv.TaskIDs()[0]
	cand, _ := srv.AddCandidate(taskID, testinvitesim.CandidateSpec{})
	srv.AdvanceTime(time.Hour)
	sid, _ := srv.StartSession(taskID, cand, "")
	now := srv.Now().UnixMilli()
	body := `{"kind":"meta","from":` + itoa(now) + `,"to":` + itoa(now) + `}`
	_, resp := do(t, srv, "POST", rest+"/tasks/"+taskID+"/test-instances/filter", body)
	p := decode(t, resp)
	if len(p.TestInstances) != 1 || p.TestInstances[0]["testInstanceId"] != sid {
		t.Errorf("window search = %s", resp)
	}
	body = `{"kind":"meta","from":` + itoa(now+1000) + `}`
	_, resp = do(t, srv, "POST", rest+"/tasks/"+taskID+"/test-instances/filter", body)
	if p := decode(t, resp); len(p.TestInstances) != 0 {
		t.Errorf("future window returned %d test instances", len(p.TestInstances))
	}
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestCreateCandidate(t *testing.T) {
	srv := start(t, testinvitesim.Options{Seed: 1, Tasks: 1, CandidatesPerTask: 1})
	taskID := srv.TaskIDs()[0]
	path := rest + "/tasks/" + taskID + "/candidates"
	status, body := do(t, srv, "POST", path, `{"kind":"temporary-candidate","fullname":"Ada","labels":["z","a"],"tags":{"b":"2","a":"1"},"tracking":{"uniqId":"ada"}}`)
	if status != 200 || !bytes.Contains(body, []byte(`"labels":["z","a"]`)) || !bytes.Contains(body, []byte(`"tags":{"a":"1","b":"2"}`)) || !bytes.Contains(body, []byte(`"group":"default"`)) {
		t.Errorf("create: %d %s", status, body)
	}
	if status, _ := do(t, srv, "POST", path, `{"kind":"temporary-candidate","tracking":{"uniqId":"ada"}}`); status != 400 {
		t.Errorf("duplicate uniqId: %d, want 400", status)
	}
	user := srv.UserIDs()[0]
	status, body = do(t, srv, "POST", path, `{"kind":"internal-candidate","id":"`+user+`"}`)
	if status != 200 || !bytes.Contains(body, []byte(`"kind":"user"`)) || !bytes.Contains(body, []byte(`"invitationCode":null`)) {
		t.Errorf("internal candidate: %d %s", status, body)
	}
	if status, _ := do(t, srv, "POST", path, `{"kind":"internal-candidate","id":"`+user+`"}`); status != 400 {
		t.Errorf("same user twice: %d, want 400", status)
	}
	if status, _ := do(t, srv, "POST", path, `{"kind":"internal-candidate","id":"nobody"}`); status != 404 {
		t.Errorf("unknown user: %d, want 404", status)
	}
}

func truth(t testing.TB, s *testinvitesim.Server) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.WriteTruth(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSeedDeterminism(t *testing.T) {
	opts := testinvitesim.Options{Seed: 42, Tasks: 3, CandidatesPerTask: 40, Sessions: 100}
	a, b := start(t, opts), start(t, opts)
	if !bytes.Equal(truth(t, a), truth(t, b)) {
		t.Fatal("same seed gave different states")
	}
	if a.Churn(500)["candidate_created"] == 0 {
		t.Error("churn created no candidate")
	}
	b.Churn(500)
	if !bytes.Equal(truth(t, a), truth(t, b)) {
		t.Error("same churn gave different states")
	}
	opts.Seed = 43
	if bytes.Equal(truth(t, a), truth(t, start(t, opts))) {
		t.Error("different seeds gave the same state")
	}
}

func TestTruthMatchesDetailedGET(t *testing.T) {
	srv := start(t, testinvitesim.Options{Seed: 3, Tasks: 2, CandidatesPerTask: 8})
	srv.Churn(200)
	paths := map[string]string{"task": "", "ticket": "/candidates/", "test_session": "/test-instances/"}
	counts := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(truth(t, srv)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Entity string          `json:"entity"`
			TaskID string          `json:"taskId"`
			ID     string          `json:"id"`
			Record json.RawMessage `json:"record"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("line %s: %v", sc.Bytes(), err)
		}
		counts[line.Entity]++
		path := rest + "/tasks/" + line.TaskID
		if line.Entity != "task" {
			path += paths[line.Entity] + line.ID
		}
		status, body := do(t, srv, "GET", path+"?mode=detailed", "")
		if status != 200 || !bytes.Equal(body, line.Record) {
			t.Errorf("%s %s: GET returned %d %s, truth has %s", line.Entity, line.ID, status, body, line.Record)
		}
	}
	tasks, cands, sessions := srv.Counts()
	if counts["task"] != tasks || counts["ticket"] != cands || counts["test_session"] != sessions {
		t.Errorf("truth counts %v, state has %d/%d/%d", counts, tasks, cands, sessions)
	}
}

func TestChurnFollowsLifecycle(t *testing.T) {
	srv := start(t, testinvitesim.Options{Seed: 5, Tasks: 2, CandidatesPerTask: 30})
	counts := srv.Churn(3000)
	for _, ev := range []string{"candidate_created", "candidate_logged_in", "candidate_edited", "candidate_deleted", "session_started", "session_completed", "session_resetup", "session_ignored"} {
		if counts[ev] == 0 {
			t.Errorf("no %s event in %v", ev, counts)
		}
	}
	cands := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(truth(t, srv)))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Entity string `json:"entity"`
			ID     string `json:"id"`
			Record struct {
				TicketID string          `json:"ticketId"`
				Status   string          `json:"status"`
				Result   json.RawMessage `json:"result"`
				LoggedIn bool            `json:"loggedIn"`
			} `json:"record"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		switch line.Entity {
		case "ticket":
			cands[line.ID] = line.Record.LoggedIn
		case "test_session":
			if loggedIn, ok := cands[line.Record.TicketID]; !ok || !loggedIn {
				t.Errorf("test instance %s of missing or never logged-in candidate %s", line.ID, line.Record.TicketID)
			}
			complete := line.Record.Status == "COMPLETE"
			if complete != (string(line.Record.Result) != "false") {
				t.Errorf("test instance %s: status %s with result %s", line.ID, line.Record.Status, line.Record.Result)
			}
		}
	}
}

func TestFaultsAdmin(t *testing.T) {
	srv := start(t, testinvitesim.Options{Seed: 1, Tasks: 1})
	status, body := do(t, srv, "POST", "/_admin/faults", `{"latency":"5ms","rate_limit_rate":0.25,"retry_after":2000,"max_page_size":7}`)
	if status != 200 {
		t.Fatalf("set faults: %d %s", status, body)
	}
	f := srv.Faults()
	if f.Latency != 5*time.Millisecond || f.RateLimitRate != 0.25 || f.RetryAfter != 2*time.Second || f.MaxPageSize != 7 || f.ServerErrorStatus != 503 {
		t.Errorf("faults = %+v", f)
	}
	_, body = do(t, srv, "GET", "/_admin/faults", "")
	var round testinvitesim.Faults
	if err := json.Unmarshal(body, &round); err != nil || round != f {
		t.Errorf("GET faults = %s (%v), want %+v", body, err, f)
	}
	for _, bad := range []string{`{"timeout_rate":1.5}`, `{"latency":"soon"}`, `{"unknown":1}`, `{"server_error_status":404}`} {
		if status, _ := do(t, srv, "POST", "/_admin/faults", bad); status != 400 {
			t.Errorf("faults %s: status %d, want 400", bad, status)
		}
	}
}

func TestStatsCountRoutes(t *testing.T) {
	srv := start(t, testinvitesim.Options{Seed: 1, Tasks: 1, CandidatesPerTask: 2})
	taskID := srv.TaskIDs()[0]
	do(t, srv, "GET", rest+"/tasks/"+taskID+"/candidates", "")
	do(t, srv, "GET", "/api/integration/rest/tasks/"+taskID+"/candidates", "")
	do(t, srv, "GET", rest+"/tasks", "")
	do(t, srv, "GET", "/nothing", "")
	st := srv.Stats()
	if st.Total != 4 || st.Route("GET /tasks/{taskId}/candidates") != 2 || st.Route("GET /tasks") != 1 || st.Route("unmatched") != 1 {
		t.Errorf("stats = %+v", st)
	}
	_, body := do(t, srv, "GET", "/_admin/stats", "")
	var fromHTTP testinvitesim.Stats
	if err := json.Unmarshal(body, &fromHTTP); err != nil || fromHTTP.Total != 4 {
		t.Errorf("GET stats = %s", body)
	}
	srv.ResetStats()
	if srv.Stats().Total != 0 {
		t.Error("reset left counts")
	}
}

func TestHangingRequestReleasedOnClose(t *testing.T) {
	srv, err := testinvitesim.NewServer(testinvitesim.Options{Seed: 1, Tasks: 1, Faults: testinvitesim.Faults{TimeoutRate: 1}})
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		resp, err := srv.Client().Get(srv.URL + rest + "/tasks")
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for srv.Stats().Faults["timeout"] == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on a hanging request")
	}
	<-errc
}

func TestOptionsValidated(t *testing.T) {
	for name, opts := range map[string]testinvitesim.Options{
		"negative tasks":   {Tasks: -1},
		"bad scheme":       {Credentials: testinvitesim.Credentials{Scheme: "digest"}},
		"bad rate":         {Faults: testinvitesim.Faults{DriftRate: 2}},
		"bad organization": {OrganizationID: "a-b"},
		"steps":            {StepsPerTask: 100},
	} {
		if _, err := testinvitesim.New(opts); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestBackgroundChurnAndFreeze(t *testing.T) {
	srv := start(t, testinvitesim.Options{Seed: 1, Tasks: 1, CandidatesPerTask: 5, ChurnRate: 2000})
	before := truth(t, srv)
	deadline := time.Now().Add(10 * time.Second)
	for bytes.Equal(before, truth(t, srv)) {
		if time.Now().After(deadline) {
			t.Fatal("background churn changed nothing in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}

	srv.Freeze()
	if err := srv.SetFaults(testinvitesim.Faults{DriftRate: 1}); err != nil {
		t.Fatal(err)
	}
	taskID := srv.TaskIDs()[0]
	do(t, srv, "GET", rest+"/tasks/"+taskID+"/candidates?page=2", "")
	if n := srv.Stats().Faults["drift"]; n != 0 {
		t.Errorf("%d drifts while frozen", n)
	}
	srv.Resume()
	do(t, srv, "GET", rest+"/tasks/"+taskID+"/candidates?page=2", "")
	if n := srv.Stats().Faults["drift"]; n != 1 {
		t.Errorf("%d drifts after resume, want 1", n)
	}
}

func TestMutationAPI(t *testing.T) {
	srv := start(t, testinvitesim.Options{Seed: 1, Tasks: 1, CandidatesPerTask: 2})
	taskID := srv.TaskIDs()[0]
	cid, err := srv.AddCandidate(taskID, testinvitesim.CandidateSpec{Fullname: "Ada", Labels: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	group := "Sales"
	if err := srv.UpdateCandidate(taskID, cid, testinvitesim.CandidateUpdate{Group: &group, Tags: map[string]string{"k": "v"}}); err != nil {
		t.Fatal(err)
	}
	rec, _ := srv.Record(testinvitesim.EntityTicket, taskID, cid)
	if !bytes.Contains(rec, []byte(`"group":"Sales","tags":{"k":"v"},"labels":["x"]`)) {
		t.Errorf("updated candidate = %s", rec)
	}

	sid, err := srv.StartSession(taskID, cid, "")
	if err != nil {
		t.Fatal(err)
	}
	complete := "COMPLETE"
	if err := srv.UpdateSession(taskID, sid, testinvitesim.SessionUpdate{Status: &complete}); err != nil {
		t.Fatal(err)
	}
	rec, _ = srv.Record(testinvitesim.EntityTestSession, taskID, sid)
	if !bytes.Contains(rec, []byte(`"status":"COMPLETE"`)) || bytes.Contains(rec, []byte(`"result":false`)) || !bytes.Contains(rec, []byte(`"group":"Sales"`)) {
		t.Errorf("completed test instance = %s", rec)
	}
	bad := "DONE"
	if err := srv.UpdateSession(taskID, sid, testinvitesim.SessionUpdate{Status: &bad}); err == nil {
		t.Error("status DONE accepted")
	}

	if err := srv.DeleteSession(taskID, sid); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Record(testinvitesim.EntityTestSession, taskID, sid); !errors.Is(err, testinvitesim.ErrNotFound) {
		t.Errorf("deleted test instance: err = %v", err)
	}
	if err := srv.DeleteCandidate(taskID, cid); err != nil {
		t.Fatal(err)
	}
	if err := srv.DeleteCandidate(taskID, cid); !errors.Is(err, testinvitesim.ErrNotFound) {
		t.Errorf("second delete: err = %v", err)
	}
	if _, err := srv.AddCandidate("nope", testinvitesim.CandidateSpec{}); !errors.Is(err, testinvitesim.ErrNotFound) {
		t.Errorf("unknown task: err = %v", err)
	}
	newTask := srv.AddTask("Fresh")
	if ids := srv.TaskIDs(); ids[0] != newTask {
		t.Errorf("new task not first: %v", ids)
	}
}

func TestHugeParameters(t *testing.T) {
	srv := start(t, testinvitesim.Options{Seed: 1, Tasks: 1, CandidatesPerTask: 3})
	base := rest + "/tasks/" + srv.TaskIDs()[0] + "/candidates"
	status, body := do(t, srv, "GET", base+"?limit=1000000000&page=1000000000", "")
	if p := decode(t, body); status != 200 || len(p.Candidates) != 0 || p.Pagination.Next != nil {
		t.Errorf("largest limit and page: %d %s", status, body)
	}
	if status, _ := do(t, srv, "GET", base+"?page=99999999999999999999", ""); status != 400 {
		t.Errorf("page beyond int: status %d, want 400", status)
	}
}

func TestChurnRespectsMaxTasks(t *testing.T) {
	sim, err := testinvitesim.New(testinvitesim.Options{Tasks: 2, CandidatesPerTask: 5, MaxTasks: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	sim.Churn(5000)
	if n := len(sim.TaskIDs()); n != 3 {
		t.Errorf("%d tasks after heavy churn, want the cap of 3", n)
	}
}
