// Package difftest generates realistic TestInvite records in detailed mode for tests and
// benchmarks of change detection and checkpoints. The records follow the documented shapes of
// candidates (tickets) and test instances (test sessions) with invented values. The same seed and
// index always give the same record.
package difftest

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// Generator makes records of one task of one organization. It is safe for concurrent use.
type Generator struct {
	seed           uint64
	organizationID string
	taskID         string
}

// NewGenerator returns a generator whose records belong to the given organization and task.
func NewGenerator(seed uint64, organizationID, taskID string) *Generator {
	return &Generator{seed: seed, organizationID: organizationID, taskID: taskID}
}

func (g *Generator) rng(kind, i, version uint64) *rand.Rand {
	return rand.New(rand.NewPCG(g.seed^kind<<56, uint64(i)<<16|version))
}

// ID returns the 20-character id of record i of a kind (0 for tickets, 1 for test sessions).
func (g *Generator) ID(kind, i int) string {
	return randomID(g.rng(uint64(kind)+10, uint64(i), 0))
}

func randomID(r *rand.Rand) string {
	var b [20]byte
	for j := range b {
		b[j] = alphabet[r.IntN(len(alphabet))]
	}
	return string(b[:])
}

var (
	firstNames = []string{"Ayşe", "Mehmet", "Elif", "John", "Maria", "Lukas", "Sofia", "Emre", "Chen", "Fatima", "Olivia", "Noah"}
	lastNames  = []string{"Yılmaz", "Kaya", "Demir", "Smith", "García", "Müller", "Rossi", "Öztürk", "Wang", "Haddad", "Johnson", "Jansen"}
	groups     = []string{"Default group", "Engineering 2025", "Sales Q1", "Graduate programme", "Customer support"}
	labelSet   = []string{"remote", "senior", "junior", "priority", "referral", "istanbul", "berlin", "second-round"}
	stages     = []string{"screening", "assessment", "interview", "offer"}
	tagKeys    = []string{"department", "location", "hiringManager", "requisition"}
	tagValues  = []string{"Sales", "R&D", "Istanbul", "Amsterdam", "Jane Doe", "REQ-2025-0147", "Support", "Ankara"}
)

func pick(r *rand.Rand, s []string) string { return s[r.IntN(len(s))] }

// Ticket returns the id and raw detailed JSON of ticket i in version v. Version 0 is the original,
// and each higher version changes a few fields, as a candidate logging in or being rated would.
func (g *Generator) Ticket(i, v int) (string, []byte) {
	id := g.ID(0, i)
	r := g.rng(0, uint64(i), 0)
	first, last := pick(r, firstNames), pick(r, lastNames)
	code := randomID(r)[:10]
	var b strings.Builder
	b.Grow(800)
	fmt.Fprintf(&b, `{"candidateId":%q,"kind":"temp","taskId":%q,"loggedIn":%t,"fullname":%q,"email":%q,`,
		id, g.taskID, v > 0, first+" "+last, strings.ToLower(ascii(first)+"."+ascii(last))+strconv.Itoa(i)+"@example.com")
	fmt.Fprintf(&b, `"invitationCode":%q,"directAccessUrl":"https://www.testinvite.com/t/%s?code=%s",`, code, g.taskID, code)
	fmt.Fprintf(&b, `"organizationId":%q,"source":"pre-registration","active":true,"activeAfter":%d,"activeBefore":%d,`,
		g.organizationID, 1738368000+r.IntN(86400)*10, 1740787200+r.IntN(86400)*10)
	fmt.Fprintf(&b, `"group":%q,"tags":{`, pick(r, groups))
	for k, key := range tagKeys[:1+r.IntN(len(tagKeys))] {
		if k > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%q", key, pick(r, tagValues))
	}
	b.WriteString(`},"labels":[`)
	for k := range 1 + r.IntN(3) {
		if k > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q", pick(r, labelSet))
	}
	b.WriteString(`],"rating":`)
	if v > 1 {
		b.WriteString(strconv.Itoa(1 + (v+i)%5))
	} else {
		b.WriteString("null")
	}
	if v > 2 {
		fmt.Fprintf(&b, `,"stage":%q}`, stages[(v+i)%len(stages)])
	} else {
		b.WriteString(`,"stage":null}`)
	}
	return id, []byte(b.String())
}

// TestSession returns the id and raw detailed JSON of test session i in version v. In version 0
// every third session is STARTED without a result and the others are COMPLETE with a result
// (scoreboard, sections, dimensions). Every higher version is COMPLETE with other scores.
func (g *Generator) TestSession(i, v int) (string, []byte) {
	id := g.ID(1, i)
	r := g.rng(1, uint64(i), 0)
	var b strings.Builder
	b.Grow(1200)
	status := "STARTED"
	if v > 0 || i%3 != 0 {
		status = "COMPLETE"
	}
	fmt.Fprintf(&b, `{"testInstanceId":%q,"taskId":%q,"stepId":"step%d","ticketId":%q,"status":%q,"ignored":false,`,
		id, g.taskID, 1+r.IntN(3), g.ID(0, i), status)
	fmt.Fprintf(&b, `"organizationId":%q,"candidate":{"id":%q,"kind":"temp"},"folder":"Recruitment/2025","group":%q,`,
		g.organizationID, g.ID(0, i), pick(r, groups))
	fmt.Fprintf(&b, `"labels":[%q,%q],"tags":{"department":%q},"result":`, pick(r, labelSet), pick(r, labelSet), pick(r, tagValues))
	if status == "STARTED" {
		b.WriteString("false}")
		return id, []byte(b.String())
	}
	score := func(max int) string {
		got := r.IntN(max + 1)
		if v > 0 {
			got = (got + v) % (max + 1)
		}
		return fmt.Sprintf(`{"pointsAchieved":%d,"maxAchievablePoints":%d,"achievementRatio":%s,"noOfQuestions":%d}`,
			got, max, strconv.FormatFloat(float64(got)/float64(max), 'f', -1, 64), max/2)
	}
	fmt.Fprintf(&b, `{"completedAt":%d,"scoreboard":%s,"sections":[`, 1738368000+r.IntN(86400*30), score(50))
	for k := range 2 {
		if k > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"uuid":"%s","scoreboard":%s}`, randomID(r)[:12], score(25))
	}
	fmt.Fprintf(&b, `],"dimensions":[{"name":"Numerical reasoning","scoreboard":%s,"subDimensions":[]}],"effects":[]}}`, score(20))
	return id, []byte(b.String())
}

// asciiReplacer maps the few non-ASCII letters of the name lists to ASCII for e-mail addresses.
var asciiReplacer = strings.NewReplacer("ş", "s", "ı", "i", "ü", "u", "ö", "o", "ç", "c", "ğ", "g", "í", "i", "Ö", "O")

func ascii(s string) string { return asciiReplacer.Replace(s) }
