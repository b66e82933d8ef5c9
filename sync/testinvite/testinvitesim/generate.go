package testinvitesim

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
)

// Vocabularies of the generated organization.
var (
	firstNames = []string{"Ada", "Alan", "Ayse", "Barbara", "Can", "Chen", "Deniz", "Elif", "Emma", "Farid", "Grace", "Hannah", "Ivan", "Jonas", "Kemal", "Lea", "Maria", "Mehmet", "Nora", "Oliver", "Priya", "Quentin", "Rosa", "Selin", "Tom", "Umut", "Vera", "Wei", "Yusuf", "Zeynep"}
	lastNames  = []string{"Aydin", "Berg", "Celik", "Dubois", "Eriksen", "Fischer", "Garcia", "Hopper", "Ivanova", "Jansen", "Kaya", "Lovelace", "Moreau", "Nakamura", "Ozturk", "Peters", "Rossi", "Schmidt", "Turing", "Yilmaz"}
	groups     = []string{"default", "Engineering", "Sales", "Support", "Campus 2025", "Finance"}
	labelPool  = []string{"priority", "referral", "campus", "remote", "senior", "junior", "intern", "batch-a", "batch-b", "rehire", "shortlist", "on-hold"}
	tagKeys    = []string{"source", "region", "recruiter", "requisition"}
	tagValues  = map[string][]string{
		"source":      {"linkedin", "careers-page", "agency", "referral"},
		"region":      {"emea", "amer", "apac"},
		"recruiter":   {"j.smith", "a.kaya", "m.rossi"},
		"requisition": {"REQ-1001", "REQ-1002", "REQ-1003", "REQ-1004"},
	}
	folders       = []string{"", "Hiring", "Hiring/Engineering", "Training", "Certification"}
	taskTitles    = []string{"Backend Developer Assessment", "Sales Aptitude", "Customer Support Screening", "Graduate Programme", "Data Analyst Test", "Leadership Potential", "English Proficiency", "Compliance Certification"}
	stepTitles    = []string{"Cognitive Ability", "Personality Inventory", "Coding Exercise", "Situational Judgement", "Language Test", "Numerical Reasoning"}
	langs         = []string{"default", "en", "tr", "de", "fr", "es", "nl"}
	accessMethods = []string{"invitation-code", "invitation-code", "single-credential", "double-credential", "no-auth"}
	testSources   = []string{"own-test", "own-test", "marketplace", "recruitment-test-library", "talent-library-test", "free-recruitment-test-library", "free-talent-library-test", "trial"}
	webcamModes   = []string{"NONE", "PHOTO", "VIDEO"}
	screenModes   = []string{"NONE", "SCREENSHOT", "SCREENCAPTURE"}
	dimensionsSet = []dimension{
		{"Numerical", []string{"Arithmetic", "Data interpretation"}},
		{"Verbal", []string{"Comprehension", "Vocabulary"}},
		{"Logical", []string{"Deduction", "Patterns"}},
	}
	effectsSet = []dimension{
		{"Extraversion", []string{"Sociability", "Assertiveness"}},
		{"Conscientiousness", []string{"Orderliness", "Diligence"}},
		{"Openness", []string{"Curiosity"}},
	}
)

const (
	day  = 24 * 3600
	hour = 3600
)

func pick[T any](rng *rand.Rand, s []T) T { return s[rng.IntN(len(s))] }

func uuid(rng *rand.Rand) string {
	const hex = "0123456789abcdef"
	var b [36]byte
	a, c := rng.Uint64(), rng.Uint64()
	for i, j := 0, 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			b[i] = '-'
			continue
		case 14:
			b[i] = '4' // version 4
			continue
		case 19:
			b[i] = "89ab"[c>>62] // RFC 4122 variant
			continue
		}
		var nibble uint64
		if j < 16 {
			nibble = a >> (4 * j) & 0xf
		} else {
			nibble = c >> (4 * (j - 16)) & 0xf
		}
		b[i] = hex[nibble]
		j++
	}
	return string(b[:])
}

// randomLabels returns up to max distinct labels in random order, possibly none.
func randomLabels(rng *rand.Rand, max int) []string {
	n := rng.IntN(max + 1)
	if n == 0 {
		return []string{}
	}
	perm := rng.Perm(len(labelPool))
	out := make([]string, n)
	for i := range out {
		out[i] = labelPool[perm[i]]
	}
	return out
}

func randomTags(rng *rand.Rand) []tag {
	n := rng.IntN(3)
	out := make([]tag, 0, n)
	perm := rng.Perm(len(tagKeys))
	for i := 0; i < n; i++ {
		k := tagKeys[perm[i]]
		out = append(out, tag{k, pick(rng, tagValues[k])})
	}
	return out
}

func invitationCode(rng *rand.Rand) string {
	const codeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	var b [10]byte
	v := rng.Uint64()
	for i := range b {
		b[i] = codeAlphabet[v&31]
		v >>= 5
	}
	return string(b[:])
}

// generate builds the seeded organization. The same options give the same state.
func generate(o Options, rng *rand.Rand) *org {
	g := &org{taskByID: map[id]*task{}, now: o.Epoch.Unix()}
	if o.OrganizationID != "" {
		g.id = o.OrganizationID
	} else {
		g.id = newID(rng).String()
	}
	for i := 0; i < 8; i++ {
		first, last := pick(rng, firstNames), pick(rng, lastNames)
		g.users = append(g.users, orgUser{
			id:       newID(rng).String(),
			username: strings.ToLower(first + "." + last),
			fullname: first + " " + last,
			email:    strings.ToLower(first+"."+last) + "@example.org",
			tags:     []tag{{"department", pick(rng, groups[1:])}},
		})
	}

	// Tasks, oldest first.
	created := make([]int64, o.Tasks)
	for i := range created {
		created[i] = g.now - int64(90+rng.IntN(270))*day - int64(rng.IntN(day))
	}
	slices.Sort(created)
	for i := range created {
		g.addTask(rng, o.StepsPerTask, created[i])
	}
	if len(g.tasks) == 0 {
		return g
	}

	// Candidates, spread evenly over the tasks and created in time order within each task.
	for ti, t := range g.tasks {
		n := o.Candidates / len(g.tasks)
		if ti < o.Candidates%len(g.tasks) {
			n++
		}
		times := make([]int64, n)
		for i := range times {
			times[i] = t.createdAt + rng.Int64N(max(g.now-t.createdAt-2*day, 1))
		}
		slices.Sort(times)
		for _, at := range times {
			kind := kindTemp
			if rng.IntN(50) == 0 {
				kind = kindUser
			}
			g.addCandidate(rng, t, at, kind, "")
		}
	}

	g.generateSessions(rng, o.Sessions)
	return g
}

// plannedSession is a test instance to be created once all of them are sorted by start time.
type plannedSession struct {
	cand      *candidate
	step      int
	startedAt int64
	status    uint8
	ignored   bool
	completed int64
}

// generateSessions spreads n test instances at random over about 80 percent of the candidates, then
// creates them per task in start-time order so that sequence numbers follow time.
func (g *org) generateSessions(rng *rand.Rand, n int) {
	var all []*candidate
	for _, t := range g.tasks {
		all = append(all, t.candidates...)
	}
	if n == 0 || len(all) == 0 {
		for _, c := range all {
			c.loggedIn = rng.IntN(10) == 0
		}
		return
	}
	engaged := make([]*candidate, 0, len(all))
	for _, c := range all {
		if rng.IntN(5) != 0 {
			engaged = append(engaged, c)
		} else {
			c.loggedIn = rng.IntN(10) == 0
		}
	}
	if len(engaged) == 0 {
		engaged = all
	}
	counts := make(map[*candidate]int, len(engaged))
	for i := 0; i < n; i++ {
		counts[engaged[rng.IntN(len(engaged))]]++
	}

	plans := map[*task][]plannedSession{}
	for _, c := range engaged {
		k := counts[c]
		if k == 0 {
			c.loggedIn = true
			continue
		}
		c.loggedIn = true
		steps := len(c.task.steps)
		at := c.createdAt + int64(hour+rng.IntN(3*day))
		for j := 0; j < k; j++ {
			p := plannedSession{cand: c, step: j % steps, startedAt: min(at, g.now-1)}
			end := p.startedAt + int64(10*60+rng.IntN(2*hour))
			last := j == k-1
			switch r := rng.IntN(10); {
			case end >= g.now || last && r < 2:
				p.status = statusStarted
			case r == 2:
				p.status = statusResetup
			default:
				p.status = statusComplete
				p.completed = end
			}
			// A later attempt at the same step means the earlier result was ignored for a retake.
			p.ignored = j+steps < k || p.status == statusComplete && rng.IntN(50) == 0
			plans[c.task] = append(plans[c.task], p)
			at = end + int64(rng.IntN(day))
		}
	}
	for _, t := range g.tasks {
		ps := plans[t]
		slices.SortStableFunc(ps, func(a, b plannedSession) int { return cmp.Compare(a.startedAt, b.startedAt) })
		t.sessions = slices.Grow(t.sessions, len(ps))
		for _, p := range ps {
			s := g.addSession(rng, p.cand, p.step, p.startedAt)
			s.status = p.status
			s.ignored = p.ignored
			s.completedAt = p.completed
		}
	}
}

func (g *org) addTask(rng *rand.Rand, steps int, createdAt int64) *task {
	t := &task{
		seq:             g.nextSeq(),
		title:           fmt.Sprintf("%s %d", pick(rng, taskTitles), len(g.tasks)+1),
		createdAt:       createdAt,
		favorite:        rng.IntN(4) == 0,
		folder:          pick(rng, folders),
		labels:          randomLabels(rng, 2),
		tags:            randomTags(rng),
		lang:            pick(rng, langs),
		accessMethod:    pick(rng, accessMethods),
		active:          rng.IntN(8) != 0,
		activeAfter:     null,
		activeBefore:    null,
		privateChat:     rng.IntN(3) == 0,
		hasForm:         rng.IntN(2) == 0,
		candByID:        map[id]*candidate{},
		sessByID:        map[id]*session{},
		deletedSessions: map[id]uint64{},
		uniqIDs:         map[string]*candidate{},
	}
	for {
		t.id = newID(rng)
		if _, dup := g.taskByID[t.id]; !dup {
			break
		}
	}
	if rng.IntN(3) == 0 {
		t.activeAfter = createdAt
		t.activeBefore = createdAt + 400*day
	}
	for i := 0; i < steps; i++ {
		t.steps = append(t.steps, newStep(rng, g.id, i))
	}
	for i := 0; i < 1+rng.IntN(2); i++ {
		t.programs = append(t.programs, named{uuid(rng), fmt.Sprintf("Programme %d", i+1)})
	}
	for _, name := range []string{"Applied", "Assessment", "Interview", "Offer"} {
		t.stages = append(t.stages, named{uuid(rng), name})
	}
	t.emailTemplates = [][2]string{{"invitation", "You are invited to " + t.title}, {"reminder", "Reminder: " + t.title}}
	g.tasks = append(g.tasks, t)
	g.taskByID[t.id] = t
	return t
}

func newStep(rng *rand.Rand, orgID string, i int) step {
	s := step{
		id:           newID(rng).String(),
		title:        stepTitles[(i+rng.IntN(len(stepTitles)))%len(stepTitles)],
		active:       true,
		activeAfter:  null,
		activeBefore: null,
		attemptLimit: pick(rng, []int{1, 1, 1, 2, 3, -1}),
		testID:       newID(rng).String(),
		testOrg:      orgID,
		testSource:   pick(rng, testSources),
		webcam:       pick(rng, webcamModes),
		screen:       pick(rng, screenModes),
		fullscreen:   rng.IntN(2) == 0,
		postAI:       rng.IntN(3) == 0,
		practice:     rng.IntN(10) == 0,
	}
	if s.testSource != "own-test" {
		s.testOrg = newID(rng).String()
	}
	for k := 0; k < 1+rng.IntN(3); k++ {
		s.sections = append(s.sections, uuid(rng))
		s.questions = append(s.questions, 5+rng.IntN(20))
	}
	s.dimensions = dimensionsSet[:rng.IntN(len(dimensionsSet)+1)]
	s.effects = effectsSet[:rng.IntN(len(effectsSet)+1)]
	return s
}

// addCandidate creates a temporary candidate (or an internal one from a random organization user)
// at the front of the task's candidate list. uniqID may be empty.
func (g *org) addCandidate(rng *rand.Rand, t *task, createdAt int64, kind uint8, uniqID string) *candidate {
	c := &candidate{
		seq:          g.nextSeq(),
		task:         t,
		kind:         kind,
		source:       uint8(rng.IntN(2)),
		active:       rng.IntN(20) != 0,
		activeAfter:  null,
		activeBefore: null,
		group:        pick(rng, groups),
		labels:       randomLabels(rng, 3),
		tags:         randomTags(rng),
		createdAt:    createdAt,
		uniqID:       uniqID,
	}
	for {
		c.id = newID(rng)
		if _, dup := t.candByID[c.id]; !dup {
			break
		}
	}
	if kind == kindUser {
		u := pick(rng, g.users)
		c.fullname, c.email = u.fullname, u.email
		c.source = sourcePre
		if _, used := t.uniqIDs[u.username]; used || uniqID != "" {
			// A user joins a task only once; fall back to a temporary candidate.
			c.kind = kindTemp
		} else {
			c.uniqID = u.username
			c.tags = append(slices.Clone(u.tags), c.tags...)
		}
	}
	if c.kind == kindTemp {
		first, last := pick(rng, firstNames), pick(rng, lastNames)
		c.fullname = first + " " + last
		c.email = fmt.Sprintf("%s.%s.%d@example.com", strings.ToLower(first), strings.ToLower(last), c.seq)
		c.code = invitationCode(rng)
		if rng.IntN(3) == 0 {
			c.externalID = fmt.Sprintf("ext-%d", c.seq)
		}
	}
	if rng.IntN(4) == 0 {
		c.rating = int8(1 + rng.IntN(5))
	}
	if rng.IntN(3) == 0 {
		c.stage = pick(rng, t.stages).uuid
	}
	if rng.IntN(10) == 0 {
		c.activeAfter = createdAt
		c.activeBefore = createdAt + 30*day
	}
	t.candidates = append(t.candidates, c)
	t.candByID[c.id] = c
	if c.uniqID != "" {
		t.uniqIDs[c.uniqID] = c
	}
	return c
}

// addSession starts a test instance of candidate c on step index stepIdx at the front of its
// task's list. It copies the candidate's group, labels and tags.
func (g *org) addSession(rng *rand.Rand, c *candidate, stepIdx int, startedAt int64) *session {
	t := c.task
	s := &session{
		seq:        g.nextSeq(),
		cand:       c,
		step:       uint16(stepIdx),
		status:     statusStarted,
		startedAt:  startedAt,
		resultSeed: rng.Uint64(),
		group:      c.group,
		labels:     c.labels,
		tags:       c.tags,
	}
	for {
		s.id = newID(rng)
		_, dup := t.sessByID[s.id]
		_, deleted := t.deletedSessions[s.id]
		if !dup && !deleted {
			break
		}
	}
	t.sessions = append(t.sessions, s)
	t.sessByID[s.id] = s
	c.sessions = append(c.sessions, s)
	c.loggedIn = true
	return s
}
