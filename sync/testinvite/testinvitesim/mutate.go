package testinvitesim

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// CandidateSpec describes a temporary candidate created with AddCandidate. Empty fields take the
// defaults of the API: group "default", no labels, no tags.
type CandidateSpec struct {
	Fullname   string
	Email      string
	Group      string
	Labels     []string
	Tags       map[string]string
	ExternalID string
	// UniqID is the tracking id, unique within the task.
	UniqID string

	internal     bool
	userTags     []tag
	activeAfter  *int64
	activeBefore *int64
}

// CandidateUpdate changes the fields of a candidate that are set (non-nil).
type CandidateUpdate struct {
	Fullname *string
	Email    *string
	Group    *string
	// Labels replaces the labels, in the given order.
	Labels []string
	// Tags replaces the tags.
	Tags     map[string]string
	LoggedIn *bool
	Active   *bool
	Rating   *int // 0 clears the rating
	Stage    *string
}

// SessionUpdate changes the fields of a test instance that are set (non-nil).
type SessionUpdate struct {
	// Status is STARTED, COMPLETE or RESETUP. COMPLETE stamps completedAt with the simulated time
	// and draws a new result.
	Status  *string
	Ignored *bool
}

func sortedTags(m map[string]string) []tag {
	out := make([]tag, 0, len(m))
	for k, v := range m {
		out = append(out, tag{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// addCandidateLocked creates a candidate from spec; s.mu must be held for writing.
func (s *Sim) addCandidateLocked(t *task, spec CandidateSpec) *candidate {
	g := s.org
	c := &candidate{
		seq:          g.nextSeq(),
		task:         t,
		kind:         kindTemp,
		source:       sourcePre,
		active:       true,
		activeAfter:  null,
		activeBefore: null,
		fullname:     spec.Fullname,
		email:        spec.Email,
		group:        spec.Group,
		labels:       slices.Clone(spec.Labels),
		tags:         append(slices.Clone(spec.userTags), sortedTags(spec.Tags)...),
		externalID:   spec.ExternalID,
		uniqID:       spec.UniqID,
		createdAt:    g.now,
	}
	if c.group == "" {
		c.group = "default"
	}
	if c.labels == nil {
		c.labels = []string{}
	}
	if spec.internal {
		c.kind = kindUser
	} else {
		c.code = invitationCode(s.rng)
	}
	if spec.activeAfter != nil {
		c.activeAfter = *spec.activeAfter
	}
	if spec.activeBefore != nil {
		c.activeBefore = *spec.activeBefore
	}
	for {
		c.id = newID(s.rng)
		if _, dup := t.candByID[c.id]; !dup {
			break
		}
	}
	t.candidates = append(t.candidates, c)
	t.candByID[c.id] = c
	if c.uniqID != "" {
		t.uniqIDs[c.uniqID] = c
	}
	return c
}

func (s *Sim) taskLocked(taskID string) (*task, error) {
	tid, ok := parseID(taskID)
	t := s.org.taskByID[tid]
	if !ok || t == nil {
		return nil, fmt.Errorf("task %q: %w", taskID, ErrNotFound)
	}
	return t, nil
}

func (s *Sim) candidateLocked(taskID, candidateID string) (*task, *candidate, error) {
	t, err := s.taskLocked(taskID)
	if err != nil {
		return nil, nil, err
	}
	cid, ok := parseID(candidateID)
	c := t.candByID[cid]
	if !ok || c == nil {
		return nil, nil, fmt.Errorf("candidate %q of task %q: %w", candidateID, taskID, ErrNotFound)
	}
	return t, c, nil
}

func (s *Sim) sessionLocked(taskID, sessionID string) (*task, *session, error) {
	t, err := s.taskLocked(taskID)
	if err != nil {
		return nil, nil, err
	}
	sid, ok := parseID(sessionID)
	ses := t.sessByID[sid]
	if !ok || ses == nil {
		return nil, nil, fmt.Errorf("test instance %q of task %q: %w", sessionID, taskID, ErrNotFound)
	}
	return t, ses, nil
}

// AddTask creates a task with the configured number of steps and returns its id.
func (s *Sim) AddTask(title string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.org.addTask(s.rng, s.opts.StepsPerTask, s.org.now)
	if title != "" {
		t.title = title
	}
	return t.id.String()
}

// AddCandidate creates a temporary candidate in a task and returns its id. It returns an error
// wrapping ErrNotFound for an unknown task, and an error when spec.UniqID is already used in the
// task.
func (s *Sim) AddCandidate(taskID string, spec CandidateSpec) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.taskLocked(taskID)
	if err != nil {
		return "", err
	}
	if spec.UniqID != "" && t.uniqIDs[spec.UniqID] != nil {
		return "", fmt.Errorf("uniq id %q is already used in task %q", spec.UniqID, taskID)
	}
	spec.internal, spec.userTags, spec.activeAfter, spec.activeBefore = false, nil, nil, nil
	return s.addCandidateLocked(t, spec).id.String(), nil
}

// UpdateCandidate applies u to a candidate. It returns an error wrapping ErrNotFound for an
// unknown task or candidate.
func (s *Sim) UpdateCandidate(taskID, candidateID string, u CandidateUpdate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, c, err := s.candidateLocked(taskID, candidateID)
	if err != nil {
		return err
	}
	if u.Fullname != nil {
		c.fullname = *u.Fullname
	}
	if u.Email != nil {
		c.email = *u.Email
	}
	if u.Group != nil {
		c.group = *u.Group
	}
	if u.Labels != nil {
		c.labels = slices.Clone(u.Labels)
	}
	if u.Tags != nil {
		c.tags = sortedTags(u.Tags)
	}
	if u.LoggedIn != nil {
		c.loggedIn = *u.LoggedIn
	}
	if u.Active != nil {
		c.active = *u.Active
	}
	if u.Rating != nil {
		if *u.Rating < 0 || *u.Rating > 5 {
			return fmt.Errorf("rating %d is invalid: expected 0 (none) to 5", *u.Rating)
		}
		c.rating = int8(*u.Rating)
	}
	if u.Stage != nil {
		c.stage = *u.Stage
	}
	return nil
}

// DeleteCandidate deletes a candidate and its test instances, whatever their state: it stands for
// a deletion on the server side, not for the API's DELETE, which refuses touched candidates. It
// returns an error wrapping ErrNotFound for an unknown task or candidate.
func (s *Sim) DeleteCandidate(taskID, candidateID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, c, err := s.candidateLocked(taskID, candidateID)
	if err != nil {
		return err
	}
	t.removeCandidate(c)
	return nil
}

// StartSession starts a test instance of a candidate on a step (the candidate's next step when
// stepID is empty), marks the candidate logged in and returns the test instance id. It returns an
// error wrapping ErrNotFound for an unknown task, candidate or step.
func (s *Sim) StartSession(taskID, candidateID, stepID string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, c, err := s.candidateLocked(taskID, candidateID)
	if err != nil {
		return "", err
	}
	stepIdx := len(c.sessions) % len(t.steps)
	if stepID != "" {
		stepIdx = slices.IndexFunc(t.steps, func(st step) bool { return st.id == stepID })
		if stepIdx < 0 {
			return "", fmt.Errorf("step %q of task %q: %w", stepID, taskID, ErrNotFound)
		}
	}
	return s.org.addSession(s.rng, c, stepIdx, s.org.now).id.String(), nil
}

// UpdateSession applies u to a test instance. It returns an error wrapping ErrNotFound for an
// unknown task or test instance, and an error for an invalid status.
func (s *Sim) UpdateSession(taskID, sessionID string, u SessionUpdate) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ses, err := s.sessionLocked(taskID, sessionID)
	if err != nil {
		return err
	}
	if u.Status != nil {
		st, ok := parseStatus(*u.Status)
		if !ok {
			return fmt.Errorf("status %q is invalid: expected STARTED, COMPLETE or RESETUP", *u.Status)
		}
		if st == statusComplete && ses.status != statusComplete {
			ses.completedAt = s.org.now
			ses.resultSeed = s.rng.Uint64()
		}
		if st != statusComplete {
			ses.completedAt = 0
		}
		ses.status = st
	}
	if u.Ignored != nil {
		ses.ignored = *u.Ignored
	}
	return nil
}

// DeleteSession deletes a test instance, which the API itself never does; it stands for a deletion
// on the server side. It returns an error wrapping ErrNotFound for an unknown task or test
// instance.
func (s *Sim) DeleteSession(taskID, sessionID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ses, err := s.sessionLocked(taskID, sessionID)
	if err != nil {
		return err
	}
	t.removeSession(ses)
	return nil
}

// AdvanceTime moves simulated time forward by d, rounded down to whole seconds.
func (s *Sim) AdvanceTime(d time.Duration) {
	s.mu.Lock()
	s.org.now += int64(d / time.Second)
	s.mu.Unlock()
}

// Now returns the simulated time.
func (s *Sim) Now() time.Time {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return time.Unix(s.org.now, 0).UTC()
}

// TaskIDs returns the task ids in API order (newest first).
func (s *Sim) TaskIDs() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.org.tasks))
	for i := len(s.org.tasks) - 1; i >= 0; i-- {
		out = append(out, s.org.tasks[i].id.String())
	}
	return out
}

// CandidateIDs returns the candidate ids of a task in API order (newest first). It returns an
// error wrapping ErrNotFound for an unknown task.
func (s *Sim) CandidateIDs(taskID string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, err := s.taskLocked(taskID)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(t.candidates))
	for i := len(t.candidates) - 1; i >= 0; i-- {
		out = append(out, t.candidates[i].id.String())
	}
	return out, nil
}

// SessionIDs returns the test instance ids of a task in API order (newest first). It returns an
// error wrapping ErrNotFound for an unknown task.
func (s *Sim) SessionIDs(taskID string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, err := s.taskLocked(taskID)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(t.sessions))
	for i := len(t.sessions) - 1; i >= 0; i-- {
		out = append(out, t.sessions[i].id.String())
	}
	return out, nil
}

// Counts returns the number of tasks, candidates and test instances.
func (s *Sim) Counts() (tasks, candidates, sessions int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.org.tasks {
		candidates += len(t.candidates)
		sessions += len(t.sessions)
	}
	return len(s.org.tasks), candidates, sessions
}

// Entity names of the truth dump and of Record.
const (
	EntityTask        = "task"
	EntityTicket      = "ticket"
	EntityTestSession = "test_session"
)

// Record returns one record exactly as the detailed GET of the API returns it (without the
// payload wrapping). It returns an error wrapping ErrNotFound for an unknown record and an error
// for an unknown entity.
func (s *Sim) Record(entity, taskID, id string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch entity {
	case EntityTask:
		t, err := s.taskLocked(taskID)
		if err != nil {
			return nil, err
		}
		return renderTask(nil, t, s.org.id, true), nil
	case EntityTicket:
		_, c, err := s.candidateLocked(taskID, id)
		if err != nil {
			return nil, err
		}
		return renderCandidate(nil, c, s.org.id, s.opts.PublicURL, true), nil
	case EntityTestSession:
		_, ses, err := s.sessionLocked(taskID, id)
		if err != nil {
			return nil, err
		}
		return renderSession(nil, ses, s.org.id, true), nil
	}
	return nil, fmt.Errorf("entity %q is invalid: expected task, ticket or test_session", entity)
}

// StepIDs returns the step ids of a task in order. It returns an error wrapping ErrNotFound for an
// unknown task.
func (s *Sim) StepIDs(taskID string) ([]string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, err := s.taskLocked(taskID)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(t.steps))
	for i := range t.steps {
		out[i] = t.steps[i].id
	}
	return out, nil
}

// UserIDs returns the ids of the organization's users, which can become internal candidates.
func (s *Sim) UserIDs() []string {
	out := make([]string, len(s.org.users))
	for i, u := range s.org.users {
		out[i] = u.id
	}
	return out
}
