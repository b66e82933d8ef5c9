package testinvitesim

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strconv"

	"go.uber.org/zap"
)

// WriteTruth writes the whole current state as JSON lines, one per record, tasks in creation order
// each followed by its candidates and then its test instances in creation order:
//
//	{"entity":"task"|"ticket"|"test_session","taskId":"...","id":"...","record":<record>}
//
// record is byte-for-byte what the detailed GET of that record returns (without the payload
// wrapping). The state is read under one lock, so the dump is a consistent snapshot; churn waits
// until it is written.
func (s *Sim) WriteTruth(w io.Writer) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	bw := bufio.NewWriterSize(w, 256<<10)
	line := make([]byte, 0, 4096)
	emit := func(entity string, taskID, id []byte, render func([]byte) []byte) error {
		line = append(line[:0], `{"entity":"`...)
		line = append(line, entity...)
		line = append(line, `","taskId":"`...)
		line = append(line, taskID...)
		line = append(line, `","id":"`...)
		line = append(line, id...)
		line = append(line, `","record":`...)
		line = render(line)
		line = append(line, '}', '\n')
		_, err := bw.Write(line)
		return err
	}
	for _, t := range s.org.tasks {
		if err := emit(EntityTask, t.id[:], t.id[:], func(b []byte) []byte { return renderTask(b, t, s.org.id, true) }); err != nil {
			return err
		}
		for _, c := range t.candidates {
			if err := emit(EntityTicket, t.id[:], c.id[:], func(b []byte) []byte {
				return renderCandidate(b, c, s.org.id, s.opts.PublicURL, true)
			}); err != nil {
				return err
			}
		}
		for _, ses := range t.sessions {
			if err := emit(EntityTestSession, t.id[:], ses.id[:], func(b []byte) []byte { return renderSession(b, ses, s.org.id, true) }); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

func (s *Sim) serveAdmin(w http.ResponseWriter, r *http.Request) {
	switch r.Method + " " + r.URL.Path {
	case "GET /_admin/truth":
		w.Header().Set("Content-Type", "application/x-ndjson")
		if err := s.WriteTruth(w); err != nil {
			s.log.Debug("truth dump interrupted", zap.Error(err))
		}
	case "GET /_admin/stats":
		body, _ := json.Marshal(s.Stats())
		writeJSON(w, http.StatusOK, body)
	case "GET /_admin/faults":
		body, _ := json.Marshal(s.Faults())
		writeJSON(w, http.StatusOK, body)
	case "POST /_admin/faults":
		var f Faults
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&f); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody(http.StatusBadRequest, "invalid faults: "+err.Error()))
			return
		}
		if err := s.SetFaults(f); err != nil {
			writeJSON(w, http.StatusBadRequest, errorBody(http.StatusBadRequest, err.Error()))
			return
		}
		s.log.Info("faults replaced", zap.Any("faults", s.Faults()))
		body, _ := json.Marshal(s.Faults())
		writeJSON(w, http.StatusOK, body)
	case "POST /_admin/churn":
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 || n > 1_000_000 {
			writeJSON(w, http.StatusBadRequest, errorBody(http.StatusBadRequest, "n: expected 0 to 1000000 churn events"))
			return
		}
		body, _ := json.Marshal(s.Churn(n))
		writeJSON(w, http.StatusOK, body)
	default:
		writeJSON(w, http.StatusNotFound, errorBody(http.StatusNotFound, "no admin route for "+r.Method+" "+r.URL.Path))
	}
}
