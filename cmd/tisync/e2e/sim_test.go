package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// simServer serves a TestInvite simulator on a loopback port, like testinvitesim.NewServer. Its
// handler counts the list pages being served, and it can run a hook before it serves a page after
// the first, while the poller is in the middle of a scan.
type simServer struct {
	*testinvitesim.Sim
	URL string

	srv    *httptest.Server
	cancel context.CancelFunc
	done   chan struct{}

	// scanning counts list requests of tickets and test sessions being served.
	scanning atomic.Int64
	// pageHook, when set, runs before a list page numbered 2 or more is served.
	pageHook atomic.Pointer[func(*http.Request)]
}

// startSim builds a simulator from opts and serves it until the test ends. Background churn runs
// at Options.ChurnRate and can be changed with SetChurnRate.
func startSim(t testing.TB, opts testinvitesim.Options) *simServer {
	t.Helper()
	sim, err := testinvitesim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &simServer{Sim: sim, cancel: cancel, done: make(chan struct{})}
	s.srv = httptest.NewServer(s)
	s.URL = s.srv.URL
	go func() {
		defer close(s.done)
		_ = sim.Run(ctx)
	}()
	t.Cleanup(func() {
		s.cancel()
		<-s.done
		s.Sim.Close()
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

// ServeHTTP serves the simulator, counting list pages and running the page hook.
func (s *simServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet && isListPath(r.URL.Path) {
		s.scanning.Add(1)
		defer s.scanning.Add(-1)
		if page, _ := strconv.Atoi(r.URL.Query().Get("page")); page >= 2 {
			if hook := s.pageHook.Load(); hook != nil {
				(*hook)(r)
			}
		}
	}
	s.Sim.ServeHTTP(w, r)
}

// isListPath reports whether path lists the tickets or the test sessions of a task.
func isListPath(path string) bool {
	return strings.Contains(path, "/tasks/") &&
		(strings.HasSuffix(path, "/candidates") || strings.HasSuffix(path, "/test-instances"))
}

// daemonEnv returns the variables that give the daemon the simulator's private key.
func (s *simServer) daemonEnv() []string {
	return []string{"TISYNC_TESTINVITE_PRIVATE_KEY=" + s.Credentials().PrivateKey}
}
