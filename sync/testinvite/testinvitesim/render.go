package testinvitesim

import (
	"math"
	"math/rand/v2"
	"strconv"
	"unicode/utf8"
)

// The render functions append the JSON of a record in the field order of the documentation. They
// are the only encoding of records, shared by the API handlers and the truth dump, so that both
// produce the same bytes.

func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendKey(b []byte, key string) []byte {
	if n := len(b); n > 0 && b[n-1] != '{' && b[n-1] != '[' {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"', ':')
}

func appendBool(b []byte, v bool) []byte { return strconv.AppendBool(b, v) }

func appendNullInt(b []byte, v int64) []byte {
	if v == null {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, v, 10)
}

func appendStrings(b []byte, s []string) []byte {
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, v)
	}
	return append(b, ']')
}

func appendTags(b []byte, tags []tag) []byte {
	b = append(b, '{')
	for i, t := range tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, t.key)
		b = append(b, ':')
		b = appendString(b, t.value)
	}
	return append(b, '}')
}

func appendFloat(b []byte, f float64) []byte {
	return strconv.AppendFloat(b, f, 'f', -1, 64)
}

func renderTask(b []byte, t *task, orgID string, detailed bool) []byte {
	b = append(b, '{')
	b = appendKey(b, "taskId")
	b = append(b, '"')
	b = append(b, t.id[:]...)
	b = append(b, '"')
	b = appendKey(b, "title")
	b = appendString(b, t.title)
	b = appendKey(b, "createdAt")
	b = strconv.AppendInt(b, t.createdAt, 10)
	if !detailed {
		return append(b, '}')
	}
	b = appendKey(b, "organizationId")
	b = appendString(b, orgID)
	b = appendKey(b, "favorite")
	b = appendBool(b, t.favorite)
	b = appendKey(b, "folder")
	b = appendString(b, t.folder)
	b = appendKey(b, "labels")
	b = appendStrings(b, t.labels)
	b = appendKey(b, "tags")
	b = appendTags(b, t.tags)
	b = appendKey(b, "lang")
	b = appendString(b, t.lang)
	b = appendKey(b, "accessMethod")
	b = appendString(b, t.accessMethod)
	b = appendKey(b, "active")
	b = appendBool(b, t.active)
	b = appendKey(b, "activeAfter")
	b = appendNullInt(b, t.activeAfter)
	b = appendKey(b, "activeBefore")
	b = appendNullInt(b, t.activeBefore)
	b = appendKey(b, "steps")
	b = append(b, '[')
	for i := range t.steps {
		s := &t.steps[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendKey(b, "id")
		b = appendString(b, s.id)
		b = appendKey(b, "title")
		b = appendString(b, s.title)
		b = appendKey(b, "active")
		b = appendBool(b, s.active)
		b = appendKey(b, "activeBefore")
		b = appendNullInt(b, s.activeBefore)
		b = appendKey(b, "activeAfter")
		b = appendNullInt(b, s.activeAfter)
		b = appendKey(b, "attemptLimit")
		b = strconv.AppendInt(b, int64(s.attemptLimit), 10)
		b = appendKey(b, "test")
		b = appendTestRef(b, s)
		b = appendKey(b, "webcamRecording")
		b = appendString(b, s.webcam)
		b = appendKey(b, "screenRecording")
		b = appendString(b, s.screen)
		b = appendKey(b, "fullscreen")
		b = appendBool(b, s.fullscreen)
		b = appendKey(b, "postAiProctoring")
		b = appendBool(b, s.postAI)
		b = appendKey(b, "practiceMode")
		b = appendBool(b, s.practice)
		b = append(b, '}')
	}
	b = append(b, ']')
	b = appendKey(b, "programs")
	b = appendNamed(b, t.programs)
	b = appendKey(b, "stages")
	b = appendNamed(b, t.stages)
	b = appendKey(b, "emailTemplates")
	b = append(b, '[')
	for i, e := range t.emailTemplates {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendKey(b, "name")
		b = appendString(b, e[0])
		b = appendKey(b, "subject")
		b = appendString(b, e[1])
		b = append(b, '}')
	}
	b = append(b, ']')
	b = appendKey(b, "privateChatEnabled")
	b = appendBool(b, t.privateChat)
	return append(b, '}')
}

func appendTestRef(b []byte, s *step) []byte {
	b = append(b, '{')
	b = appendKey(b, "testId")
	b = appendString(b, s.testID)
	b = appendKey(b, "organizationId")
	b = appendString(b, s.testOrg)
	b = appendKey(b, "source")
	b = appendString(b, s.testSource)
	return append(b, '}')
}

func appendNamed(b []byte, ns []named) []byte {
	b = append(b, '[')
	for i, n := range ns {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendKey(b, "uuid")
		b = appendString(b, n.uuid)
		b = appendKey(b, "name")
		b = appendString(b, n.name)
		b = append(b, '}')
	}
	return append(b, ']')
}

var kindNames = [...]string{kindTemp: "temp", kindUser: "user"}
var sourceNames = [...]string{sourcePre: "pre-registration", sourceSelf: "self-registration"}

func directAccessURL(publicURL string, c *candidate) string {
	return publicURL + "/t/" + c.task.id.String() + "?code=" + c.code
}

func renderCandidate(b []byte, c *candidate, orgID, publicURL string, detailed bool) []byte {
	b = append(b, '{')
	b = appendKey(b, "candidateId")
	b = append(b, '"')
	b = append(b, c.id[:]...)
	b = append(b, '"')
	b = appendKey(b, "kind")
	b = appendString(b, kindNames[c.kind])
	b = appendKey(b, "taskId")
	b = append(b, '"')
	b = append(b, c.task.id[:]...)
	b = append(b, '"')
	b = appendKey(b, "loggedIn")
	b = appendBool(b, c.loggedIn)
	if c.fullname != "" {
		b = appendKey(b, "fullname")
		b = appendString(b, c.fullname)
	}
	if c.email != "" {
		b = appendKey(b, "email")
		b = appendString(b, c.email)
	}
	b = appendKey(b, "invitationCode")
	if c.kind == kindUser {
		b = append(b, "null"...)
	} else {
		b = appendString(b, c.code)
	}
	b = appendKey(b, "directAccessUrl")
	if c.kind == kindUser {
		b = append(b, "null"...)
	} else {
		b = appendString(b, directAccessURL(publicURL, c))
	}
	if !detailed {
		return append(b, '}')
	}
	b = appendKey(b, "organizationId")
	b = appendString(b, orgID)
	b = appendKey(b, "source")
	b = appendString(b, sourceNames[c.source])
	b = appendKey(b, "active")
	b = appendBool(b, c.active)
	b = appendKey(b, "activeAfter")
	b = appendNullInt(b, c.activeAfter)
	b = appendKey(b, "activeBefore")
	b = appendNullInt(b, c.activeBefore)
	b = appendKey(b, "group")
	b = appendString(b, c.group)
	b = appendKey(b, "tags")
	b = appendTags(b, c.tags)
	b = appendKey(b, "labels")
	b = appendStrings(b, c.labels)
	b = appendKey(b, "rating")
	if c.rating == 0 {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, int64(c.rating), 10)
	}
	b = appendKey(b, "stage")
	if c.stage == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, c.stage)
	}
	return append(b, '}')
}

func renderSession(b []byte, s *session, orgID string, detailed bool) []byte {
	c := s.cand
	t := c.task
	st := &t.steps[s.step]
	b = append(b, '{')
	b = appendKey(b, "testInstanceId")
	b = append(b, '"')
	b = append(b, s.id[:]...)
	b = append(b, '"')
	b = appendKey(b, "taskId")
	b = append(b, '"')
	b = append(b, t.id[:]...)
	b = append(b, '"')
	b = appendKey(b, "stepId")
	b = appendString(b, st.id)
	b = appendKey(b, "ticketId")
	b = append(b, '"')
	b = append(b, c.id[:]...)
	b = append(b, '"')
	b = appendKey(b, "status")
	b = appendString(b, statusNames[s.status])
	b = appendKey(b, "ignored")
	b = appendBool(b, s.ignored)
	b = appendKey(b, "result")
	if s.status != statusComplete {
		b = append(b, "false"...)
	} else {
		b = appendResult(b, s, st, detailed)
	}
	if !detailed {
		return append(b, '}')
	}
	b = appendKey(b, "organizationId")
	b = appendString(b, orgID)
	b = appendKey(b, "candidate")
	b = append(b, '{')
	b = appendKey(b, "id")
	b = append(b, '"')
	b = append(b, c.id[:]...)
	b = append(b, '"')
	b = appendKey(b, "kind")
	b = appendString(b, kindNames[c.kind])
	b = append(b, '}')
	b = appendKey(b, "folder")
	b = appendString(b, t.folder)
	b = appendKey(b, "group")
	b = appendString(b, s.group)
	b = appendKey(b, "labels")
	b = appendStrings(b, s.labels)
	b = appendKey(b, "tags")
	b = appendTags(b, s.tags)
	return append(b, '}')
}

// scoreboard is one result block; questions is 0 in basic mode, where the field is absent.
type scoreboard struct{ achieved, max, questions int }

func newScoreboard(rng *rand.Rand, questions int) scoreboard {
	m := questions * 2
	return scoreboard{achieved: rng.IntN(m + 1), max: m, questions: questions}
}

func appendScoreboard(b []byte, sb scoreboard, detailed bool) []byte {
	b = append(b, '{')
	b = appendKey(b, "pointsAchieved")
	b = strconv.AppendInt(b, int64(sb.achieved), 10)
	b = appendKey(b, "maxAchievablePoints")
	b = strconv.AppendInt(b, int64(sb.max), 10)
	b = appendKey(b, "achievementRatio")
	ratio := 0.0
	if sb.max > 0 {
		ratio = math.Round(float64(sb.achieved)/float64(sb.max)*10000) / 10000
	}
	b = appendFloat(b, ratio)
	if detailed {
		b = appendKey(b, "noOfQuestions")
		b = strconv.AppendInt(b, int64(sb.questions), 10)
	}
	return append(b, '}')
}

// appendResult derives the result of a completed test instance from its seed, so that it costs no
// memory and is the same in every response.
func appendResult(b []byte, s *session, st *step, detailed bool) []byte {
	rng := rand.New(rand.NewPCG(s.resultSeed, 0x5ee5))
	sections := make([]scoreboard, len(st.sections))
	var total scoreboard
	for i, q := range st.questions {
		sections[i] = newScoreboard(rng, q)
		total.achieved += sections[i].achieved
		total.max += sections[i].max
		total.questions += q
	}
	b = append(b, '{')
	b = appendKey(b, "completedAt")
	b = strconv.AppendInt(b, s.completedAt, 10)
	b = appendKey(b, "scoreboard")
	b = appendScoreboard(b, total, detailed)
	if !detailed {
		return append(b, '}')
	}
	b = appendKey(b, "sections")
	b = append(b, '[')
	for i, sb := range sections {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendKey(b, "uuid")
		b = appendString(b, st.sections[i])
		b = appendKey(b, "scoreboard")
		b = appendScoreboard(b, sb, true)
		b = append(b, '}')
	}
	b = append(b, ']')
	b = appendKey(b, "dimensions")
	b = append(b, '[')
	for i, d := range st.dimensions {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendKey(b, "name")
		b = appendString(b, d.name)
		b = appendKey(b, "scoreboard")
		b = appendScoreboard(b, newScoreboard(rng, 4+rng.IntN(8)), true)
		b = appendKey(b, "subDimensions")
		b = append(b, '[')
		for j, sub := range d.subs {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			b = appendKey(b, "name")
			b = appendString(b, sub)
			b = appendKey(b, "scoreboard")
			b = appendScoreboard(b, newScoreboard(rng, 2+rng.IntN(4)), true)
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	b = append(b, ']')
	b = appendKey(b, "effects")
	b = append(b, '[')
	for i, e := range st.effects {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendKey(b, "name")
		b = appendString(b, e.name)
		b = appendKey(b, "score")
		b = appendFloat(b, float64(rng.IntN(101))/10)
		b = appendKey(b, "subEffects")
		b = append(b, '[')
		for j, sub := range e.subs {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			b = appendKey(b, "name")
			b = appendString(b, sub)
			b = appendKey(b, "score")
			b = appendFloat(b, float64(rng.IntN(101))/10)
			b = append(b, '}')
		}
		b = append(b, "]}"...)
	}
	b = append(b, ']')
	return append(b, '}')
}

// Expand keywords of POST .../test-instances/:id/expand.
var expandKeywords = map[string]bool{"test": true, "uniqId": true, "creditCost": true, "roomForm": true, "identityPhoto": true}

// renderExpanded appends the detailed test instance with the blocks named by expand, in the
// order the keywords were given.
func renderExpanded(b []byte, s *session, orgID, publicURL string, expand []string) []byte {
	b = renderSession(b, s, orgID, true)
	b = b[:len(b)-1] // reopen the object
	c := s.cand
	t := c.task
	st := &t.steps[s.step]
	for _, k := range expand {
		switch k {
		case "creditCost":
			b = appendKey(b, "creditCost")
			b = strconv.AppendInt(b, int64(1+s.resultSeed%3), 10)
		case "uniqId":
			b = appendKey(b, "uniqId")
			uniq := c.uniqID
			if uniq == "" {
				uniq = c.email
			}
			b = appendString(b, uniq)
		case "test":
			b = appendKey(b, "test")
			b = append(b, '{')
			b = appendKey(b, "source")
			b = appendString(b, st.testSource)
			b = appendKey(b, "testId")
			b = appendString(b, st.testID)
			b = appendKey(b, "organizationId")
			b = appendString(b, st.testOrg)
			b = append(b, '}')
		case "roomForm":
			b = appendKey(b, "roomForm")
			if t.hasForm {
				b = appendTags(b, []tag{{"fullname", c.fullname}, {"consent", "yes"}})
			} else {
				b = append(b, "{}"...)
			}
		case "identityPhoto":
			b = appendKey(b, "identityPhoto")
			b = append(b, '{')
			b = appendKey(b, "url")
			if st.webcam == "NONE" {
				b = append(b, "null"...)
			} else {
				b = appendString(b, publicURL+"/evidence/"+s.id.String()+"/identity.jpg")
			}
			b = append(b, '}')
		}
	}
	return append(b, '}')
}
