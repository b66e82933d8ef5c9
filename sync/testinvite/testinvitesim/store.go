package testinvitesim

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// The in-memory store keeps one organization and is built for a million test instances. Records
// are compact structs whose ids are fixed-size arrays, so maps keyed by id hold no pointers. Each
// task keeps its candidates and test instances in slices in creation order, sorted by sequence
// number. A page is a range of such a slice read back to front (newest first), so no request
// sorts anything. Results are derived at render time from a per-instance seed instead of being
// stored.

// null is the stored value of a nullable timestamp that is null.
const null = math.MinInt64

// idLen is the length of every id the simulator generates.
const idLen = 20

// id is a 20-character [A-Za-z0-9] identifier.
type id [idLen]byte

func (i id) String() string { return string(i[:]) }

// parseID returns the id spelled by s, and false when s cannot be a simulator id.
func parseID(s string) (id, bool) {
	var i id
	if len(s) != idLen {
		return i, false
	}
	copy(i[:], s)
	return i, true
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

func newID(rng *rand.Rand) id {
	var i id
	for half := 0; half < 2; half++ {
		// 62^10 < 2^64, so one 64-bit draw yields ten characters.
		v := rng.Uint64()
		for k := 0; k < 10; k++ {
			i[half*10+k] = alphabet[v%62]
			v /= 62
		}
	}
	return i
}

// tag is one entry of a string-keyed map, kept as a slice so that rendering is deterministic.
type tag struct{ key, value string }

// named is a {uuid, name} pair of a task's programs and stages.
type named struct{ uuid, name string }

// Candidate kinds, sources and session statuses, stored as small integers.
const (
	kindTemp uint8 = iota
	kindUser
)

const (
	sourcePre uint8 = iota
	sourceSelf
)

const (
	statusStarted uint8 = iota
	statusComplete
	statusResetup
)

var statusNames = [...]string{"STARTED", "COMPLETE", "RESETUP"}

func parseStatus(s string) (uint8, bool) {
	for i, n := range statusNames {
		if n == s {
			return uint8(i), true
		}
	}
	return 0, false
}

// orgUser is a user of the organization that can become an internal candidate.
type orgUser struct {
	id       string
	username string
	fullname string
	email    string
	tags     []tag
}

type step struct {
	id           string
	title        string
	active       bool
	activeAfter  int64
	activeBefore int64
	attemptLimit int
	testID       string
	testOrg      string
	testSource   string
	webcam       string
	screen       string
	fullscreen   bool
	postAI       bool
	practice     bool
	// The structure of the step's test, from which results are derived.
	sections   []string
	questions  []int // per section
	dimensions []dimension
	effects    []dimension
}

type dimension struct {
	name string
	subs []string
}

type task struct {
	id             id
	seq            uint64
	title          string
	createdAt      int64
	favorite       bool
	folder         string
	labels         []string
	tags           []tag
	lang           string
	accessMethod   string
	active         bool
	activeAfter    int64
	activeBefore   int64
	steps          []step
	programs       []named
	stages         []named
	emailTemplates [][2]string
	privateChat    bool
	hasForm        bool

	candidates []*candidate // creation order (ascending seq)
	candByID   map[id]*candidate
	sessions   []*session // creation order (ascending seq)
	sessByID   map[id]*session
	// deletedSessions maps ids of deleted test instances to their sequence numbers, so that a
	// cursor naming one still continues from its place.
	deletedSessions map[id]uint64
	uniqIDs         map[string]*candidate
}

type candidate struct {
	id           id
	seq          uint64
	task         *task
	kind         uint8
	source       uint8
	loggedIn     bool
	active       bool
	favorite     bool
	rating       int8 // 0 is null
	fullname     string
	email        string
	code         string // "" for kind user
	activeAfter  int64
	activeBefore int64
	group        string
	labels       []string // never mutated in place: edits replace the slice
	tags         []tag    // never mutated in place
	stage        string   // "" is null
	externalID   string
	uniqID       string
	createdAt    int64
	sessions     []*session
}

type session struct {
	id          id
	seq         uint64
	cand        *candidate
	step        uint16
	status      uint8
	ignored     bool
	startedAt   int64
	completedAt int64
	resultSeed  uint64
	// Copied from the candidate when the session started; shared, never mutated in place.
	group  string
	labels []string
	tags   []tag
}

// org is the whole simulated state. Its fields are guarded by Sim.mu.
type org struct {
	id       string
	users    []orgUser
	tasks    []*task // creation order
	taskByID map[id]*task
	seq      uint64 // last sequence number handed out, shared by every entity
	now      int64  // simulated time in Unix seconds
}

func (o *org) nextSeq() uint64 {
	o.seq++
	return o.seq
}

// indexBySeq returns the position of seq in a slice sorted by ascending seq, or the position where
// it would be inserted.
func indexBySeq[T any](s []T, seq uint64, key func(T) uint64) int {
	return sort.Search(len(s), func(i int) bool { return key(s[i]) >= seq })
}

func candSeq(c *candidate) uint64 { return c.seq }
func sessSeq(s *session) uint64   { return s.seq }

func (t *task) removeCandidate(c *candidate) {
	i := indexBySeq(t.candidates, c.seq, candSeq)
	if i < len(t.candidates) && t.candidates[i] == c {
		t.candidates = slices.Delete(t.candidates, i, i+1)
	}
	delete(t.candByID, c.id)
	if c.uniqID != "" && t.uniqIDs[c.uniqID] == c {
		delete(t.uniqIDs, c.uniqID)
	}
	for _, s := range c.sessions {
		t.removeSession(s)
	}
}

func (t *task) removeSession(s *session) {
	i := indexBySeq(t.sessions, s.seq, sessSeq)
	if i < len(t.sessions) && t.sessions[i] == s {
		t.sessions = slices.Delete(t.sessions, i, i+1)
	}
	delete(t.sessByID, s.id)
	t.deletedSessions[s.id] = s.seq
	c := s.cand
	if j := slices.Index(c.sessions, s); j >= 0 {
		c.sessions = slices.Delete(c.sessions, j, j+1)
	}
}

// touched reports whether the candidate may no longer be deleted through the API: it logged in or
// has a test instance.
func (c *candidate) touched() bool { return c.loggedIn || len(c.sessions) > 0 }
