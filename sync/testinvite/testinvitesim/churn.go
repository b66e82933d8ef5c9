package testinvitesim

import (
	"net/http"
	"slices"

	"go.uber.org/zap"
)

// Churn event names, the keys of the map Churn returns.
const (
	EventTaskCreated      = "task_created"
	EventCandidateCreated = "candidate_created"
	EventCandidateLogin   = "candidate_logged_in"
	EventCandidateEdited  = "candidate_edited"
	EventCandidateDeleted = "candidate_deleted"
	EventSessionStarted   = "session_started"
	EventSessionCompleted = "session_completed"
	EventSessionResetup   = "session_resetup"
	EventSessionIgnored   = "session_ignored"
)

// probes is how many random records an event inspects to find one in the state it needs before it
// falls back to creating a candidate.
const probes = 16

// Churn applies n lifecycle events drawn from the seeded generator and returns how many of each
// kind it applied. Each event advances simulated time by 1 to 30 seconds. Churn applies even while
// the simulator is frozen; Freeze only stops the background loop and drift.
func (s *Sim) Churn(n int) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	counts := map[string]int{}
	for i := 0; i < n; i++ {
		counts[s.churnOne()]++
	}
	if n > 0 {
		s.log.Debug("churn applied", zap.Int("events", n), zap.Any("by_kind", counts))
	}
	return counts
}

func (s *Sim) churnOne() string {
	g, rng := s.org, s.rng
	g.now += 1 + rng.Int64N(30)
	if len(g.tasks) == 0 {
		g.addTask(rng, s.opts.StepsPerTask, g.now)
		return EventTaskCreated
	}
	t := pick(rng, g.tasks)
	randomCandidate := func(ok func(*candidate) bool) *candidate {
		if len(t.candidates) == 0 {
			return nil
		}
		for i := 0; i < probes; i++ {
			if c := pick(rng, t.candidates); ok(c) {
				return c
			}
		}
		return nil
	}
	randomSession := func(ok func(*session) bool) *session {
		if len(t.sessions) == 0 {
			return nil
		}
		for i := 0; i < probes; i++ {
			// Recent sessions are the ones still moving, so probe the newest quarter twice as often.
			n := len(t.sessions)
			idx := rng.IntN(n)
			if rng.IntN(2) == 0 {
				idx = n - 1 - rng.IntN(max(n/4, 1))
			}
			if ses := t.sessions[idx]; ok(ses) {
				return ses
			}
		}
		return nil
	}

	switch w := rng.IntN(100); {
	case w < 10:
		if c := randomCandidate(func(c *candidate) bool { return !c.loggedIn }); c != nil {
			c.loggedIn = true
			return EventCandidateLogin
		}
	case w < 32:
		steps := len(t.steps)
		if c := randomCandidate(func(c *candidate) bool {
			return c.loggedIn && c.active && !slices.ContainsFunc(c.sessions, func(x *session) bool { return x.status == statusStarted })
		}); c != nil {
			step := len(c.sessions) % steps
			if len(c.sessions) >= steps {
				// A retake: the earlier attempt at this step is ignored.
				for _, old := range c.sessions {
					if int(old.step) == step {
						old.ignored = true
					}
				}
			}
			g.addSession(rng, c, step, g.now)
			return EventSessionStarted
		}
	case w < 55:
		if ses := randomSession(func(x *session) bool { return x.status != statusComplete }); ses != nil {
			ses.status = statusComplete
			ses.completedAt = g.now
			ses.resultSeed = rng.Uint64()
			return EventSessionCompleted
		}
	case w < 60:
		if ses := randomSession(func(x *session) bool { return x.status == statusComplete }); ses != nil {
			ses.status = statusResetup
			ses.completedAt = 0
			return EventSessionResetup
		}
	case w < 63:
		if ses := randomSession(func(x *session) bool { return x.status == statusComplete && !x.ignored }); ses != nil {
			ses.ignored = true
			return EventSessionIgnored
		}
	case w < 78:
		if c := randomCandidate(func(*candidate) bool { return true }); c != nil {
			if rng.IntN(3) == 0 {
				c.group = pick(rng, groups)
			} else {
				c.labels = editLabels(c.labels, randomLabels(rng, 2), randomLabels(rng, 1))
			}
			return EventCandidateEdited
		}
	case w < 86:
		if c := randomCandidate(func(c *candidate) bool { return !c.touched() }); c != nil {
			t.removeCandidate(c)
			return EventCandidateDeleted
		}
	case w < 87:
		if s.opts.MaxTasks == 0 || len(g.tasks) < s.opts.MaxTasks {
			g.addTask(rng, s.opts.StepsPerTask, g.now)
			return EventTaskCreated
		}
	}
	g.addCandidate(rng, t, g.now, kindTemp, "")
	return EventCandidateCreated
}

// maybeDrift changes the listed collection of the request's task when the request drew the drift
// fault and requests a page after the first.
func (s *Sim) maybeDrift(r *http.Request, continuation bool, entity string) {
	f := faultsOf(r)
	if !f.drift || !continuation {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, rng := s.org, s.rng
	var t *task
	if entity != "task" {
		tid, ok := parseID(r.PathValue("taskId"))
		if t = g.taskByID[tid]; !ok || t == nil {
			return
		}
	}
	s.stats.fault("drift")
	if entity == "ticket" {
		for i := 0; i < f.driftDeletes; i++ {
			// Delete the newest untouched candidate. It sits on a page the scan already read, so
			// every later record slips back by one place and one of them is skipped.
			j := len(t.candidates) - 1
			for j >= 0 && t.candidates[j].touched() {
				j--
			}
			if j < 0 {
				break
			}
			t.removeCandidate(t.candidates[j])
		}
	}
	for i := 0; i < f.driftInserts; i++ {
		switch entity {
		case "task":
			g.addTask(rng, s.opts.StepsPerTask, g.now)
		case "ticket":
			g.addCandidate(rng, t, g.now, kindTemp, "")
		case "test_session":
			c := g.addCandidate(rng, t, g.now, kindTemp, "")
			g.addSession(rng, c, 0, g.now)
		}
	}
}
