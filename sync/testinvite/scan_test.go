package testinvite_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"

	"github.com/tisync/tisync/sync/testinvite"
	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

func TestScanMoreThanTenThousandRecords(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 21, Tasks: 1, Candidates: 10_500, Sessions: 12_000})
	c, _ := newClient(t, testConfig(srv))
	ctx := ctxT(t)
	taskID := srv.TaskIDs()[0]

	t.Run("candidates", func(t *testing.T) {
		sc := c.ListCandidates(taskID, testinvite.CandidateQuery{})
		var got []string
		for p, err := range sc.Pages(ctx) {
			if err != nil {
				t.Fatalf("page: %v", err)
			}
			for _, r := range p.Records {
				got = append(got, r.ID)
			}
		}
		want, _ := srv.CandidateIDs(taskID)
		if !slices.Equal(got, want) {
			t.Errorf("got %d candidates, want %d in API order", len(got), len(want))
		}
		st := sc.Stats()
		if st.Pages != 105 || st.Records != 10_500 || st.Duplicates != 0 || !st.Exhaustive() {
			t.Errorf("stats = %+v", st)
		}
	})
	t.Run("test instances by cursor", func(t *testing.T) {
		sc := c.SearchTestInstances(taskID, testinvite.TestInstanceSearch{PageSize: 500})
		n := 0
		for r, err := range sc.All(ctx) {
			if err != nil {
				t.Fatalf("record: %v", err)
			}
			if r.ID == "" {
				t.Fatal("record without id")
			}
			n++
		}
		if n != 12_000 || sc.Stats().Pages != 24 || !sc.Stats().Exhaustive() {
			t.Errorf("read %d test instances, stats %+v", n, sc.Stats())
		}
	})
}

func TestScanAdaptsToServerPageCap(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 8, Tasks: 1, CandidatesPerTask: 230, Faults: testinvitesim.Faults{MaxPageSize: 25}})
	c, logs := newClient(t, testConfig(srv))
	ctx := ctxT(t)
	taskID := srv.TaskIDs()[0]

	got, st, err := c.ListCandidates(taskID, testinvite.CandidateQuery{}).Collect(ctx)
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	want, _ := srv.CandidateIDs(taskID)
	if !slices.Equal(ids(got, func(x testinvite.Candidate) string { return x.ID }), want) {
		t.Errorf("got %d candidates, want %d", len(got), len(want))
	}
	if st.ShortPages != 1 || st.PageSize != 100 || st.LastPageSize != 25 || st.Realigned || !st.Exhaustive() {
		t.Errorf("stats = %+v", st)
	}
	if n := logs.FilterMessageSnippet("short page").Len(); n != 1 {
		t.Errorf("short page logged %d times, want once", n)
	}

	// The next scan of the endpoint starts at the learned cap.
	_, st, err = c.ListCandidates(taskID, testinvite.CandidateQuery{}).Collect(ctx)
	if err != nil {
		t.Fatalf("second scan: %v", err)
	}
	if st.PageSize != 25 || st.ShortPages != 0 || st.Pages != 10 {
		t.Errorf("second scan stats = %+v", st)
	}
	if n := logs.FilterMessageSnippet("short page").Len(); n != 1 {
		t.Errorf("short page logged %d times after two scans, want once", n)
	}
}

func TestScanDriftDuplicatesDropped(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 12, Tasks: 1, CandidatesPerTask: 95,
		Faults: testinvitesim.Faults{DriftRate: 1, DriftInserts: 1}})
	c, _ := newClient(t, testConfig(srv))
	taskID := srv.TaskIDs()[0]

	got, st, err := c.ListCandidates(taskID, testinvite.CandidateQuery{PageSize: 10}).Collect(ctxT(t))
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r.ID] {
			t.Errorf("candidate %s returned twice", r.ID)
		}
		seen[r.ID] = true
	}
	if st.Duplicates == 0 || st.Duplicates != st.Pages-1 {
		t.Errorf("duplicates = %d over %d pages, want one per page after the first", st.Duplicates, st.Pages)
	}
	if st.Records != 95 {
		t.Errorf("records = %d, want the 95 that existed when the scan began", st.Records)
	}
	if st.TotalsConsistent || st.Exhaustive() {
		t.Errorf("drifting scan reported consistent: %+v", st)
	}
	if f := srv.Stats().Faults["drift"]; f != int64(st.Pages-1) {
		t.Errorf("simulator drifted %d times, want %d", f, st.Pages-1)
	}
}

func TestScanDriftDeleteNotExhaustive(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 13, Tasks: 1, CandidatesPerTask: 60, Sessions: -1,
		Faults: testinvitesim.Faults{DriftRate: 1, DriftDeletes: 1}})
	c, _ := newClient(t, testConfig(srv))
	taskID := srv.TaskIDs()[0]
	_, st, err := c.ListCandidates(taskID, testinvite.CandidateQuery{PageSize: 10}).Collect(ctxT(t))
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	if st.TotalsConsistent || st.Exhaustive() {
		t.Errorf("scan that skipped records reported exhaustive: %+v", st)
	}
	if st.LastTotals.Items >= st.FirstTotals.Items {
		t.Errorf("totals %+v -> %+v, want fewer items", st.FirstTotals, st.LastTotals)
	}
}

// listServer serves one candidate list of n records with offset paging and one cursor search,
// misbehaving as configured.
type listServer struct {
	n int
	// limitCap returns at most this many records; offsets still use the requested limit and the
	// pagination reports it.
	limitCap int
	// ignorePage serves page 1 whatever page is requested.
	ignorePage bool
	// emptyPage serves an empty page with a next link at this page number.
	emptyPage int
	// stuckCursor returns for every search page with the same lastDocId.
	stuckCursor bool
}

func (ls *listServer) id(i int) string { return fmt.Sprintf("rec%05d", i) }

func (ls *listServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	switch r.URL.Path {
	case "/api/integration/rest/v1/tasks/T1/candidates":
		page, _ := strconv.Atoi(q.Get("page"))
		if ls.ignorePage {
			page = 1
		}
		start := (page - 1) * limit
		end := min(start+limit, ls.n)
		if ls.limitCap > 0 {
			end = min(end, start+ls.limitCap)
		}
		if page == ls.emptyPage {
			end = start
		}
		totalPages := (ls.n + limit - 1) / limit
		body := `{"candidates":[`
		for i := start; i < end; i++ {
			if i > start {
				body += ","
			}
			body += `{"candidateId":"` + ls.id(i) + `","kind":"temp","taskId":"T1","loggedIn":false}`
		}
		next := "null"
		if page < totalPages {
			next = `"?limit=` + strconv.Itoa(limit) + `&page=` + strconv.Itoa(page+1) + `"`
		}
		body += fmt.Sprintf(`],"pagination":{"totalItems":%d,"totalPages":%d,"currentPage":%d,"limit":%d,"next":%s,"previous":null}}`,
			ls.n, totalPages, page, limit, next)
		io.WriteString(w, body)
	case "/api/integration/rest/v1/tasks/T1/test-instances/filter":
		last := q.Get("lastDocId")
		start := 0
		if last != "" {
			start, _ = strconv.Atoi(last[3:])
			start++
		}
		if ls.stuckCursor {
			start = 0
		}
		end := min(start+limit, ls.n)
		body := `{"testInstances":[`
		for i := start; i < end; i++ {
			if i > start {
				body += ","
			}
			body += `{"testInstanceId":"` + ls.id(i) + `","taskId":"T1","status":"STARTED","ignored":false,"result":false}`
		}
		cursor := "null"
		if end < ls.n {
			cursor = `"` + ls.id(end-1) + `"`
		}
		body += fmt.Sprintf(`],"pagination":{"limit":%d,"lastDocId":%s,"next":null}}`, limit, cursor)
		io.WriteString(w, body)
	default:
		http.NotFound(w, r)
	}
}

func fakeListClient(t *testing.T, ls *listServer) *testinvite.Client {
	t.Helper()
	hs := httptest.NewServer(ls)
	t.Cleanup(hs.Close)
	cfg := testinvite.DefaultConfig()
	cfg.BaseURL = hs.URL
	cfg.OrganizationID = "org1"
	cfg.PrivateKey = "key"
	cfg.RateLimit.RPS = 0
	c, _ := newClient(t, cfg)
	return c
}

func TestScanPaginationErrors(t *testing.T) {
	cases := []struct {
		name   string
		server listServer
		search bool
		want   error
	}{
		{"repeated page", listServer{n: 50, ignorePage: true}, false, testinvite.ErrRepeatedPage},
		{"empty page before the end", listServer{n: 50, emptyPage: 2}, false, testinvite.ErrInconsistentPagination},
		{"cursor not advancing", listServer{n: 50, stuckCursor: true}, true, testinvite.ErrCursorNotAdvancing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeListClient(t, &tc.server)
			var err error
			if tc.search {
				_, _, err = c.SearchTestInstances("T1", testinvite.TestInstanceSearch{PageSize: 10}).Collect(ctxT(t))
			} else {
				_, _, err = c.ListCandidates("T1", testinvite.CandidateQuery{PageSize: 10}).Collect(ctxT(t))
			}
			var pe *testinvite.PaginationError
			if !errors.Is(err, tc.want) || !errors.As(err, &pe) || pe.Page != 2 {
				t.Errorf("err = %v, want %v on page 2", err, tc.want)
			}
		})
	}
}

func TestScanErrorIsSticky(t *testing.T) {
	c := fakeListClient(t, &listServer{n: 50, ignorePage: true})
	sc := c.ListCandidates("T1", testinvite.CandidateQuery{PageSize: 10})
	var first error
	for i := 0; i < 3 && first == nil; i++ {
		_, first = sc.Next(ctxT(t))
	}
	if _, err := sc.Next(ctxT(t)); err != first || err == nil {
		t.Errorf("Next after error = %v, want %v", err, first)
	}
	if sc.Stats().Complete {
		t.Error("failed scan reported complete")
	}
}

func TestScanCapWithRequestedOffsets(t *testing.T) {
	// This server caps pages at 30 but computes offsets from the requested limit and reports it,
	// so a client that kept its page size would skip records 30..99 of every 100.
	c := fakeListClient(t, &listServer{n: 250, limitCap: 30})
	got, st, err := c.ListCandidates("T1", testinvite.CandidateQuery{PageSize: 100}).Collect(ctxT(t))
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	if len(got) != 250 {
		t.Errorf("got %d records, want 250", len(got))
	}
	for i, r := range got {
		if r.ID != fmt.Sprintf("rec%05d", i) {
			t.Fatalf("record %d is %s", i, r.ID)
		}
	}
	if st.ShortPages != 1 || st.LastPageSize != 30 {
		t.Errorf("stats = %+v", st)
	}
}

func TestScanEarlyBreak(t *testing.T) {
	c := fakeListClient(t, &listServer{n: 100})
	sc := c.ListCandidates("T1", testinvite.CandidateQuery{PageSize: 10})
	n := 0
	for _, err := range sc.All(ctxT(t)) {
		if err != nil {
			t.Fatal(err)
		}
		n++
		if n == 15 {
			break
		}
	}
	if st := sc.Stats(); st.Pages != 2 || st.Complete {
		t.Errorf("after reading 15 records: stats %+v, want 2 pages, incomplete", st)
	}
	if p, err := sc.Next(ctxT(t)); err != nil || p.Number != 3 {
		t.Errorf("Next after break = page %d, %v; want page 3", p.Number, err)
	}
}

func TestScanCapAppearingMidScan(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 14, Tasks: 1, CandidatesPerTask: 95})
	c, _ := newClient(t, testConfig(srv))
	taskID := srv.TaskIDs()[0]
	sc := c.ListCandidates(taskID, testinvite.CandidateQuery{PageSize: 10})
	first, err := sc.Next(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	// The cap now makes the server compute offsets with 4 records per page, so page 2 holds
	// records 4 to 7, which the scan already read.
	if err := srv.SetFaults(testinvitesim.Faults{MaxPageSize: 4}); err != nil {
		t.Fatal(err)
	}
	rest, st, err := sc.Collect(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	got := append(ids(first.Records, func(x testinvite.Candidate) string { return x.ID }), ids(rest, func(x testinvite.Candidate) string { return x.ID })...)
	want, _ := srv.CandidateIDs(taskID)
	if !slices.Equal(got, want) {
		t.Errorf("got %d candidates, want all %d in order", len(got), len(want))
	}
	if !st.Realigned || st.ShortPages != 1 || st.Duplicates == 0 || st.LastPageSize != 4 {
		t.Errorf("stats = %+v", st)
	}
}

func TestScanRejectsOversizedPage(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"candidates":[{"candidateId":"a"},{"candidateId":"b"},{"candidateId":"c"}],"pagination":{"totalItems":9,"totalPages":3,"currentPage":1,"limit":3,"next":"?page=2","previous":null}}`)
	}))
	t.Cleanup(hs.Close)
	cfg := testinvite.DefaultConfig()
	cfg.BaseURL, cfg.OrganizationID, cfg.PrivateKey, cfg.RateLimit.RPS = hs.URL, "org1", "k", 0
	c, _ := newClient(t, cfg)
	_, err := c.ListCandidates("T1", testinvite.CandidateQuery{PageSize: 2}).Next(ctxT(t))
	if !errors.Is(err, testinvite.ErrInconsistentPagination) {
		t.Errorf("err = %v, want ErrInconsistentPagination", err)
	}
}

func TestScanWithoutTotalsNotExhaustive(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"candidates":[{"candidateId":"a"},{"candidateId":"b"}],"pagination":{"currentPage":1,"limit":10,"next":null,"previous":null}}`)
	}))
	t.Cleanup(hs.Close)
	cfg := testinvite.DefaultConfig()
	cfg.BaseURL, cfg.OrganizationID, cfg.PrivateKey, cfg.RateLimit.RPS = hs.URL, "org1", "k", 0
	c, _ := newClient(t, cfg)
	got, st, err := c.ListCandidates("T1", testinvite.CandidateQuery{}).Collect(ctxT(t))
	if err != nil || len(got) != 2 {
		t.Fatalf("scan: %d records, %v", len(got), err)
	}
	if !st.Complete || st.Exhaustive() {
		t.Errorf("scan without totals: complete %v, exhaustive %v; want complete, not exhaustive", st.Complete, st.Exhaustive())
	}
}
