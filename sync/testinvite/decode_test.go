package testinvite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/tisync/tisync/sync/testinvite"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// decodedRecord is the golden form of one decoded record: the typed fields and the raw bytes.
type decodedRecord struct {
	Typed           any    `json:"typed"`
	ResultAvailable *bool  `json:"result_available,omitempty"`
	Raw             string `json:"raw"`
}

type decodedOutput struct {
	Records        []decodedRecord `json:"records"`
	TypeMismatches int             `json:"type_mismatches"`
	Exhaustive     bool            `json:"exhaustive"`
}

// serveFile responds to every request with the file's bytes.
func serveFile(t *testing.T, body []byte) *testinvite.Client {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	}))
	t.Cleanup(hs.Close)
	cfg := testinvite.DefaultConfig()
	cfg.BaseURL, cfg.OrganizationID, cfg.PrivateKey, cfg.RateLimit.RPS = hs.URL, "zUH8oMYJ60As4HYP48Zx", "k", 0
	c, _ := newClient(t, cfg)
	return c
}

func TestDecodeGolden(t *testing.T) {
	cases := []struct {
		name string
		read func(c *testinvite.Client) (decodedOutput, error)
	}{
		{"candidates_page", readCandidates},
		{"candidates_wrapped", readCandidates},
		{"test_instances_page", readTestInstances},
		{"test_instances_type_mismatch", readTestInstances},
		{"search_page", func(c *testinvite.Client) (decodedOutput, error) {
			recs, st, err := c.SearchTestInstances("Qj33evNTg7IjLnao2Ux1", testinvite.TestInstanceSearch{}).Collect(ctxT(t))
			return testInstanceOutput(recs, st), err
		}},
		{"task_wrapped", func(c *testinvite.Client) (decodedOutput, error) {
			task, err := c.GetTask(ctxT(t), "Qj33evNTg7IjLnao2Ux1")
			return decodedOutput{Records: []decodedRecord{{Typed: task, Raw: string(task.Raw)}}, Exhaustive: true}, err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			input, err := os.ReadFile(filepath.Join("testdata", "decode", tc.name+".input.json"))
			if err != nil {
				t.Fatal(err)
			}
			out, err := tc.read(serveFile(t, input))
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			for _, r := range out.Records {
				if !bytes.Contains(input, []byte(r.Raw)) {
					t.Errorf("raw record is not a verbatim part of the input: %s", r.Raw)
				}
			}
			got, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := filepath.Join("testdata", "decode", tc.name+".golden.json")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden file (run with -update to create it): %v", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("decoded output differs from %s (run with -update to accept):\n%s", golden, got)
			}
		})
	}
}

func readCandidates(c *testinvite.Client) (decodedOutput, error) {
	recs, st, err := c.ListCandidates("Qj33evNTg7IjLnao2Ux1", testinvite.CandidateQuery{}).Collect(context.Background())
	out := decodedOutput{TypeMismatches: st.TypeMismatches, Exhaustive: st.Exhaustive()}
	for _, r := range recs {
		out.Records = append(out.Records, decodedRecord{Typed: r, Raw: string(r.Raw)})
	}
	return out, err
}

func readTestInstances(c *testinvite.Client) (decodedOutput, error) {
	recs, st, err := c.ListTestInstances("Qj33evNTg7IjLnao2Ux1", testinvite.TestInstanceQuery{}).Collect(context.Background())
	return testInstanceOutput(recs, st), err
}

func testInstanceOutput(recs []testinvite.TestInstance, st testinvite.ScanStats) decodedOutput {
	out := decodedOutput{TypeMismatches: st.TypeMismatches, Exhaustive: st.Exhaustive()}
	for _, r := range recs {
		avail := r.Result.Available
		out.Records = append(out.Records, decodedRecord{Typed: r, ResultAvailable: &avail, Raw: string(r.Raw)})
	}
	return out
}

func TestDecodeTolerance(t *testing.T) {
	input, err := os.ReadFile(filepath.Join("testdata", "decode", "test_instances_page.input.json"))
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := serveFile(t, input).ListTestInstances("Qj33evNTg7IjLnao2Ux1", testinvite.TestInstanceQuery{}).Collect(ctxT(t))
	if err != nil || len(recs) != 3 {
		t.Fatalf("got %d records, err %v", len(recs), err)
	}
	cases := []struct {
		name string
		ok   bool
	}{
		{"complete has result", recs[0].Result.Available && recs[0].Result.Scoreboard.PointsAchieved == 42 && recs[0].Result.CompletedAt.Time().Year() == 2025},
		{"false result", !recs[1].Result.Available},
		{"null result", !recs[2].Result.Available},
		{"unknown status kept", recs[2].Status == "PAUSED" && !recs[2].Status.Known()},
		{"unknown field kept in raw", bytes.Contains(recs[2].Raw, []byte(`"proctoringScore": 0.97`))},
		{"nested result parts", len(recs[0].Result.Dimensions) == 1 && recs[0].Result.Dimensions[0].SubDimensions[0].Name == "Arithmetic"},
	}
	for _, tc := range cases {
		if !tc.ok {
			t.Errorf("%s: failed", tc.name)
		}
	}
}
