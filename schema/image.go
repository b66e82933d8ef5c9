package schema

import (
	"math"
	"strconv"
	"time"
)

// This file decodes the record images, the before and after members of an event's data, into
// rows. It checks them against the task, ticket and testSession definitions of EventSchemaV1 as
// it reads them: required members, the JSON type of every declared member, the id pattern, the
// integer ranges and the nullable members. Members the schema does not declare are allowed, as the
// schema allows them, and only their JSON grammar is checked. The image text must be a JSON object.

// Image locations, as error messages name them.
const (
	whereBefore = "data.before"
	whereAfter  = "data.after"
)

// sub returns where.name, from constants for the locations used on every event, so that the
// common case allocates nothing.
func sub(where, name string) string {
	switch {
	case where == whereAfter && name == "result":
		return whereAfter + ".result"
	case where == whereBefore && name == "result":
		return whereBefore + ".result"
	case where == whereAfter+".result" && name == "scoreboard":
		return whereAfter + ".result.scoreboard"
	case where == whereBefore+".result" && name == "scoreboard":
		return whereBefore + ".result.scoreboard"
	}
	return where + "." + name
}

// mark records the member bit in seen, failing for a member that appeared before.
func mark(seen *uint32, bit uint32, where, name string) error {
	if *seen&bit != 0 {
		return duplicate(where, name)
	}
	*seen |= bit
	return nil
}

// startObject checks that the next value is an object and consumes its opening brace.
func startObject(sc *scanner, where, name string) error {
	if k := sc.peek(); k != kindObject {
		return sc.mismatch(k, where, name, "object")
	}
	sc.objectStart()
	return nil
}

var taskMembers = []string{"taskId", "title", "createdAt", "organizationId", "favorite", "folder", "labels", "tags",
	"lang", "accessMethod", "active", "activeAfter", "activeBefore", "steps", "programs", "stages", "emailTemplates",
	"privateChatEnabled"}

const taskRequired = 1<<0 | 1<<1 | 1<<2 // taskId, title, createdAt

// decodeTask decodes a task image into r.
func decodeTask(image, where string, r *taskRow) error {
	sc := &scanner{s: image}
	if err := startObject(sc, "", where); err != nil {
		return err
	}
	var seen uint32
	for first := true; ; {
		name, more, err := sc.member(&first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		bit := uint32(0)
		switch name {
		case "taskId":
			bit = 1 << 0
			r.recordID, err = readID(sc, where, name)
		case "title":
			bit = 1 << 1
			r.title, err = readString(sc, where, name)
		case "createdAt":
			bit = 1 << 2
			r.createdAt, err = readUnixSeconds(sc, where, name)
		case "organizationId":
			bit = 1 << 3
			r.organizationIDField, err = readString(sc, where, name)
		case "favorite":
			bit = 1 << 4
			r.favorite, err = readBool(sc, where, name)
		case "folder":
			bit = 1 << 5
			r.folder, err = readString(sc, where, name)
		case "labels":
			bit = 1 << 6
			r.labels, err = readStrings(sc, where, name, nil)
		case "tags":
			bit = 1 << 7
			r.tagKeys, r.tagValues, err = readTags(sc, where, name)
		case "lang":
			bit = 1 << 8
			r.lang, err = readString(sc, where, name)
		case "accessMethod":
			bit = 1 << 9
			r.accessMethod, err = readString(sc, where, name)
		case "active":
			bit = 1 << 10
			r.active, err = readBool(sc, where, name)
		case "activeAfter":
			bit = 1 << 11
			err = readNullableUnixSeconds(sc, where, name, &r.activeAfter, &r.times[0])
		case "activeBefore":
			bit = 1 << 12
			err = readNullableUnixSeconds(sc, where, name, &r.activeBefore, &r.times[1])
		case "steps":
			bit = 1 << 13
			err = decodeSteps(sc, where, &r.steps)
		case "programs":
			bit = 1 << 14
			r.programUUIDs, r.programNames, err = readPairs(sc, where, name, "uuid", "name")
		case "stages":
			bit = 1 << 15
			r.stageUUIDs, r.stageNames, err = readPairs(sc, where, name, "uuid", "name")
		case "emailTemplates":
			bit = 1 << 16
			r.emailTemplateNames, r.emailTemplateSubjects, err = readPairs(sc, where, name, "name", "subject")
		case "privateChatEnabled":
			bit = 1 << 17
			r.privateChatEnabled, err = readBool(sc, where, name)
		default:
			_, err = sc.skip(1)
		}
		if err == nil && bit != 0 {
			err = mark(&seen, bit, where, name)
		}
		if err != nil {
			return err
		}
	}
	if err := sc.end(); err != nil {
		return err
	}
	return requireAll(seen, taskRequired, where, taskMembers)
}

var stepMembers = []string{"id", "title", "active", "activeAfter", "activeBefore", "attemptLimit", "test",
	"webcamRecording", "screenRecording", "fullscreen", "postAiProctoring", "practiceMode"}

// decodeSteps decodes the steps array of a task, appending one element per step to every slice
// of steps, so that the Nested columns keep equal lengths.
func decodeSteps(sc *scanner, where string, steps *stepColumns) error {
	if k := sc.peek(); k != kindArray {
		return sc.mismatch(k, where, "steps", "array of objects")
	}
	sc.arrayStart()
	for first, n := true, 0; ; n++ {
		more, err := sc.item(&first)
		if err != nil || !more {
			return err
		}
		stepWhere := where + ".steps[" + strconv.Itoa(n) + "]"
		if err := decodeStep(sc, stepWhere, steps); err != nil {
			return err
		}
	}
}

func decodeStep(sc *scanner, where string, steps *stepColumns) error {
	if k := sc.peek(); k != kindObject {
		return sc.mismatch(k, where, "", "object")
	}
	sc.objectStart()
	var (
		seen                                 uint32
		id, title, webcam, screen            string
		testID, testOrg, testSource          string
		active, fullscreen, postAI, practice uint8
		activeAfter, activeBefore            *time.Time
		attemptLimit                         int64
	)
	times := new([2]time.Time) // what activeAfter and activeBefore point to

	for first := true; ; {
		name, more, err := sc.member(&first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		bit := uint32(0)
		switch name {
		case "id":
			bit = 1 << 0
			id, err = readString(sc, where, name)
		case "title":
			bit = 1 << 1
			title, err = readString(sc, where, name)
		case "active":
			bit = 1 << 2
			active, err = readBool(sc, where, name)
		case "activeAfter":
			bit = 1 << 3
			err = readNullableUnixSeconds(sc, where, name, &activeAfter, &times[0])
		case "activeBefore":
			bit = 1 << 4
			err = readNullableUnixSeconds(sc, where, name, &activeBefore, &times[1])
		case "attemptLimit":
			bit = 1 << 5
			attemptLimit, err = readInteger(sc, where, name, -1, math.MaxInt64)
		case "test":
			bit = 1 << 6
			testID, testOrg, testSource, err = decodeStepTest(sc, where)
		case "webcamRecording":
			bit = 1 << 7
			webcam, err = readString(sc, where, name)
		case "screenRecording":
			bit = 1 << 8
			screen, err = readString(sc, where, name)
		case "fullscreen":
			bit = 1 << 9
			fullscreen, err = readBool(sc, where, name)
		case "postAiProctoring":
			bit = 1 << 10
			postAI, err = readBool(sc, where, name)
		case "practiceMode":
			bit = 1 << 11
			practice, err = readBool(sc, where, name)
		default:
			_, err = sc.skip(1)
		}
		if err == nil && bit != 0 {
			err = mark(&seen, bit, where, name)
		}
		if err != nil {
			return err
		}
	}
	if err := requireAll(seen, 1<<0, where, stepMembers); err != nil {
		return err
	}

	steps.id = append(steps.id, id)
	steps.title = append(steps.title, title)
	steps.active = append(steps.active, active)
	steps.activeAfter = append(steps.activeAfter, activeAfter)
	steps.activeBefore = append(steps.activeBefore, activeBefore)
	steps.attemptLimit = append(steps.attemptLimit, attemptLimit)
	steps.testID = append(steps.testID, testID)
	steps.testOrganizationID = append(steps.testOrganizationID, testOrg)
	steps.testSource = append(steps.testSource, testSource)
	steps.webcamRecording = append(steps.webcamRecording, webcam)
	steps.screenRecording = append(steps.screenRecording, screen)
	steps.fullscreen = append(steps.fullscreen, fullscreen)
	steps.postAIProctoring = append(steps.postAIProctoring, postAI)
	steps.practiceMode = append(steps.practiceMode, practice)
	return nil
}

// decodeStepTest decodes the test object of a task step.
func decodeStepTest(sc *scanner, where string) (testID, org, source string, err error) {
	if err := startObject(sc, where, "test"); err != nil {
		return "", "", "", err
	}
	where = where + ".test"
	var seen uint32
	for first := true; ; {
		name, more, err := sc.member(&first)
		if err != nil {
			return "", "", "", err
		}
		if !more {
			return testID, org, source, nil
		}
		bit := uint32(0)
		switch name {
		case "testId":
			bit = 1 << 0
			testID, err = readString(sc, where, name)
		case "organizationId":
			bit = 1 << 1
			org, err = readString(sc, where, name)
		case "source":
			bit = 1 << 2
			source, err = readString(sc, where, name)
		default:
			_, err = sc.skip(2)
		}
		if err == nil && bit != 0 {
			err = mark(&seen, bit, where, name)
		}
		if err != nil {
			return "", "", "", err
		}
	}
}

// readPairs reads an array of objects with two optional string members, first and second,
// returning their values in two parallel slices ("" where a member is missing).
func readPairs(sc *scanner, where, name, first, second string) (firsts, seconds []string, err error) {
	if k := sc.peek(); k != kindArray {
		return nil, nil, sc.mismatch(k, where, name, "array of objects")
	}
	sc.arrayStart()
	firsts, seconds = []string{}, []string{}
	isFirst := true
	for n := 0; ; n++ {
		more, err := sc.item(&isFirst)
		if err != nil {
			return nil, nil, err
		}
		if !more {
			return firsts, seconds, nil
		}
		itemWhere := where + "." + name + "[" + strconv.Itoa(n) + "]"
		if err := startObject(sc, itemWhere, ""); err != nil {
			return nil, nil, err
		}
		var a, b string
		var seen uint32
		for firstMember := true; ; {
			member, more, err := sc.member(&firstMember)
			if err != nil {
				return nil, nil, err
			}
			if !more {
				break
			}
			switch member {
			case first:
				if err = mark(&seen, 1, itemWhere, member); err == nil {
					a, err = readString(sc, itemWhere, member)
				}
			case second:
				if err = mark(&seen, 2, itemWhere, member); err == nil {
					b, err = readString(sc, itemWhere, member)
				}
			default:
				_, err = sc.skip(2)
			}
			if err != nil {
				return nil, nil, err
			}
		}
		firsts, seconds = append(firsts, a), append(seconds, b)
	}
}

var ticketMembers = []string{"candidateId", "kind", "taskId", "loggedIn", "fullname", "email", "invitationCode",
	"directAccessUrl", "organizationId", "source", "active", "activeAfter", "activeBefore", "group", "tags",
	"labels", "rating", "stage"}

const ticketRequired = 1<<0 | 1<<2 // candidateId, taskId

// decodeTicket decodes a ticket image into r.
func decodeTicket(image, where string, r *ticketRow) error {
	sc := &scanner{s: image}
	if err := startObject(sc, "", where); err != nil {
		return err
	}
	var seen uint32
	for first := true; ; {
		name, more, err := sc.member(&first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		bit := uint32(0)
		switch name {
		case "candidateId":
			bit = 1 << 0
			r.recordID, err = readID(sc, where, name)
		case "kind":
			bit = 1 << 1
			r.kind, err = readString(sc, where, name)
		case "taskId":
			bit = 1 << 2
			r.taskIDField, err = readID(sc, where, name)
		case "loggedIn":
			bit = 1 << 3
			r.loggedIn, err = readBool(sc, where, name)
		case "fullname":
			bit = 1 << 4
			err = readNullableString(sc, where, name, &r.fullname, &r.strs[0])
		case "email":
			bit = 1 << 5
			err = readNullableString(sc, where, name, &r.email, &r.strs[1])
		case "invitationCode":
			bit = 1 << 6
			err = readNullableString(sc, where, name, &r.invitationCode, &r.strs[2])
		case "directAccessUrl":
			bit = 1 << 7
			err = readNullableString(sc, where, name, &r.directAccessURL, &r.strs[3])
		case "organizationId":
			bit = 1 << 8
			r.organizationIDField, err = readString(sc, where, name)
		case "source":
			bit = 1 << 9
			r.source, err = readString(sc, where, name)
		case "active":
			bit = 1 << 10
			r.active, err = readBool(sc, where, name)
		case "activeAfter":
			bit = 1 << 11
			err = readNullableUnixSeconds(sc, where, name, &r.activeAfter, &r.times[0])
		case "activeBefore":
			bit = 1 << 12
			err = readNullableUnixSeconds(sc, where, name, &r.activeBefore, &r.times[1])
		case "group":
			bit = 1 << 13
			r.group, err = readString(sc, where, name)
		case "tags":
			bit = 1 << 14
			r.tagKeys, r.tagValues, err = readTags(sc, where, name)
		case "labels":
			bit = 1 << 15
			r.labels, err = readStrings(sc, where, name, nil)
		case "rating":
			bit = 1 << 16
			if sc.peek() == kindNull {
				r.rating, err = nil, sc.literal("null")
				break
			}
			var v int64
			if v, err = readInteger(sc, where, name, 1, 5); err == nil {
				r.ratingValue = uint8(v)
				r.rating = &r.ratingValue
			}
		case "stage":
			bit = 1 << 17
			err = readNullableString(sc, where, name, &r.stage, &r.strs[4])
		default:
			_, err = sc.skip(1)
		}
		if err == nil && bit != 0 {
			err = mark(&seen, bit, where, name)
		}
		if err != nil {
			return err
		}
	}
	if err := sc.end(); err != nil {
		return err
	}
	return requireAll(seen, ticketRequired, where, ticketMembers)
}

var testSessionMembers = []string{"testInstanceId", "taskId", "stepId", "ticketId", "status", "ignored", "result",
	"organizationId", "candidate", "folder", "group", "labels", "tags"}

const testSessionRequired = 1<<0 | 1<<1 | 1<<2 | 1<<3 | 1<<4 // testInstanceId, taskId, stepId, ticketId, status

// decodeTestSession decodes a test session image into r.
func decodeTestSession(image, where string, r *testSessionRow) error {
	sc := &scanner{s: image}
	if err := startObject(sc, "", where); err != nil {
		return err
	}
	var seen uint32
	for first := true; ; {
		name, more, err := sc.member(&first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		bit := uint32(0)
		switch name {
		case "testInstanceId":
			bit = 1 << 0
			r.recordID, err = readID(sc, where, name)
		case "taskId":
			bit = 1 << 1
			r.taskIDField, err = readID(sc, where, name)
		case "stepId":
			bit = 1 << 2
			r.stepID, err = readString(sc, where, name)
		case "ticketId":
			bit = 1 << 3
			r.ticketID, err = readString(sc, where, name)
		case "status":
			bit = 1 << 4
			r.status, err = readString(sc, where, name)
		case "ignored":
			bit = 1 << 5
			r.ignored, err = readBool(sc, where, name)
		case "result":
			bit = 1 << 6
			err = decodeResult(sc, where, r)
		case "organizationId":
			bit = 1 << 7
			r.organizationIDField, err = readString(sc, where, name)
		case "candidate":
			bit = 1 << 8
			r.candidateID, r.candidateKind, err = decodeSessionCandidate(sc, where)
		case "folder":
			bit = 1 << 9
			r.folder, err = readString(sc, where, name)
		case "group":
			bit = 1 << 10
			r.group, err = readString(sc, where, name)
		case "labels":
			bit = 1 << 11
			r.labels, err = readStrings(sc, where, name, nil)
		case "tags":
			bit = 1 << 12
			r.tagKeys, r.tagValues, err = readTags(sc, where, name)
		default:
			_, err = sc.skip(1)
		}
		if err == nil && bit != 0 {
			err = mark(&seen, bit, where, name)
		}
		if err != nil {
			return err
		}
	}
	if err := sc.end(); err != nil {
		return err
	}
	return requireAll(seen, testSessionRequired, where, testSessionMembers)
}

// decodeSessionCandidate decodes the candidate object of a test session.
func decodeSessionCandidate(sc *scanner, where string) (id, kind string, err error) {
	if err := startObject(sc, where, "candidate"); err != nil {
		return "", "", err
	}
	where = where + ".candidate"
	var seen uint32
	for first := true; ; {
		name, more, err := sc.member(&first)
		if err != nil {
			return "", "", err
		}
		if !more {
			return id, kind, nil
		}
		switch name {
		case "id":
			if err = mark(&seen, 1, where, name); err == nil {
				id, err = readString(sc, where, name)
			}
		case "kind":
			if err = mark(&seen, 2, where, name); err == nil {
				kind, err = readString(sc, where, name)
			}
		default:
			_, err = sc.skip(2)
		}
		if err != nil {
			return "", "", err
		}
	}
}

var resultMembers = []string{"completedAt", "scoreboard", "sections", "dimensions", "effects"}

// decodeResult decodes the result of a test session, null or an object, into r.
func decodeResult(sc *scanner, where string, r *testSessionRow) error {
	r.hasResult, r.completedAt, r.pointsAchieved, r.maxAchievablePoints, r.ratio, r.noOfQuestions = 0, nil, nil, nil, nil, nil
	r.resultSections, r.resultDimensions, r.resultEffects = "", "", ""
	if sc.peek() == kindNull {
		return sc.literal("null")
	}
	if err := startObject(sc, where, "result"); err != nil {
		return err
	}
	where = sub(where, "result")
	res := &r.result
	var seen uint32
	for first := true; ; {
		name, more, err := sc.member(&first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		bit := uint32(0)
		switch name {
		case "completedAt":
			bit = 1 << 0
			res.completedAt, err = readUnixSeconds(sc, where, name)
		case "scoreboard":
			bit = 1 << 1
			err = decodeScoreboard(sc, where, r)
		case "sections":
			bit = 1 << 2
			r.resultSections, err = readObjects(sc, where, name)
		case "dimensions":
			bit = 1 << 3
			r.resultDimensions, err = readObjects(sc, where, name)
		case "effects":
			bit = 1 << 4
			r.resultEffects, err = readObjects(sc, where, name)
		default:
			_, err = sc.skip(2)
		}
		if err == nil && bit != 0 {
			err = mark(&seen, bit, where, name)
		}
		if err != nil {
			return err
		}
	}
	if err := requireAll(seen, 1<<0|1<<1, where, resultMembers); err != nil {
		return err
	}
	r.hasResult = 1
	r.completedAt = &res.completedAt
	r.pointsAchieved, r.maxAchievablePoints, r.ratio = &res.points, &res.maxPoints, &res.ratio
	return nil
}

var scoreboardMembers = []string{"pointsAchieved", "maxAchievablePoints", "achievementRatio", "noOfQuestions"}

// decodeScoreboard decodes the scoreboard of a result into r.result and r.noOfQuestions.
func decodeScoreboard(sc *scanner, where string, r *testSessionRow) error {
	if err := startObject(sc, where, "scoreboard"); err != nil {
		return err
	}
	where = sub(where, "scoreboard")
	res := &r.result
	r.noOfQuestions = nil
	var seen uint32
	for first := true; ; {
		name, more, err := sc.member(&first)
		if err != nil {
			return err
		}
		if !more {
			break
		}
		bit := uint32(0)
		switch name {
		case "pointsAchieved":
			bit = 1 << 0
			res.points, err = readNumber(sc, where, name)
		case "maxAchievablePoints":
			bit = 1 << 1
			res.maxPoints, err = readNumber(sc, where, name)
		case "achievementRatio":
			bit = 1 << 2
			res.ratio, err = readNumber(sc, where, name)
		case "noOfQuestions":
			bit = 1 << 3
			var n int64
			if n, err = readInteger(sc, where, name, 0, math.MaxUint32); err == nil {
				res.noOfQuestions = uint32(n)
				r.noOfQuestions = &res.noOfQuestions
			}
		default:
			_, err = sc.skip(3)
		}
		if err == nil && bit != 0 {
			err = mark(&seen, bit, where, name)
		}
		if err != nil {
			return err
		}
	}
	return requireAll(seen, 1<<0|1<<1|1<<2, where, scoreboardMembers)
}
