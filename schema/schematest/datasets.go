package schematest

import (
	"strconv"
	"time"

	"github.com/tisync/tisync/schema"
)

// EveryKind returns four events for each entity of one task, covering every op: a snapshot of
// record "<entity>A", and the creation, an update (folder or status changed) and the deletion of
// record "<entity>B". Observation times start at t0 and grow by one minute per event.
func EveryKind(org, taskID string, t0 time.Time) []schema.Event {
	var out []schema.Event
	at := t0
	next := func() time.Time { at = at.Add(time.Minute); return at }
	for _, e := range schema.Entities {
		var a, b Record
		var idA, idB string
		switch e {
		case schema.EntityTask:
			// A task event's entity id is its task id, so the two records are two tasks.
			idA, idB = taskID, taskID+"B"
			a, b = Task(org, idA), Task(org, idB)
		case schema.EntityTicket:
			idA, idB = "ticketA", "ticketB"
			a, b = Ticket(org, taskID, idA), Ticket(org, taskID, idB)
		case schema.EntityTestSession:
			idA, idB = "sessionA", "sessionB"
			a = TestSession(org, taskID, idA, "ticketA", "s1", "COMPLETE", 0.75)
			b = TestSession(org, taskID, idB, "ticketB", "s2", "STARTED", 0)
		}
		taskOf := func(id string) string {
			if e == schema.EntityTask {
				return id
			}
			return taskID
		}
		out = append(out, NewEvent(Change{Org: org, Task: taskOf(idA), Entity: e, EntityID: idA, Op: schema.OpSnapshot, Revision: 1, After: a, ObservedAt: next()}))
		out = append(out, NewEvent(Change{Org: org, Task: taskOf(idB), Entity: e, EntityID: idB, Op: schema.OpCreated, Revision: 1, After: b, ObservedAt: next()}))
		b2 := b.Clone()
		if e == schema.EntityTestSession {
			b2 = TestSession(org, taskID, idB, "ticketB", "s2", "COMPLETE", 0.25)
		} else {
			b2["folder"] = "Archive"
			b2["labels"] = []any{"archived"}
		}
		if e == schema.EntityTicket {
			b2["rating"] = 4
			b2["stage"] = "Interview"
			b2["loggedIn"] = true
		}
		out = append(out, NewEvent(Change{Org: org, Task: taskOf(idB), Entity: e, EntityID: idB, Op: schema.OpUpdated, Revision: 2, Before: b, After: b2, ObservedAt: next()}))
		out = append(out, NewEvent(Change{Org: org, Task: taskOf(idB), Entity: e, EntityID: idB, Op: schema.OpDeleted, Revision: 3, Before: b2, ObservedAt: next()}))
	}
	return out
}

// AnalyticsDataset returns the events of a small organization whose analytics are easy to work out
// by hand. Task "T1" has steps s1 and s2 and these tickets:
//
//   - k1 never logged in; k2 logged in but has no session;
//   - k3 started s1;
//   - k4 completed s1 (ratio 0.8, STARTED observed 600 s before COMPLETE) and s2 (ratio 0.4, first
//     seen already COMPLETE);
//   - k5 completed s1 twice: an ignored attempt (ratio 0.3) and a second attempt (ratio 0.55) that
//     went STARTED, RESETUP, STARTED, COMPLETE, first STARTED 900 s before COMPLETE; k5 started s2;
//   - k6 was created and deleted.
//
// Task "T2" has no task record and one ticket, k7, with one COMPLETE session (ratio 1.0).
//
// The expected funnel of T1 is 5 invited, 4 logged in, 3 started and 1 completed, and T2 has 1 of
// each. At the 0.5 threshold, 2 of 2 candidates pass T1's s1, 0 of 1 pass s2 and 1 of 2 pass task
// T1. The durations from STARTED to COMPLETE are 600 s for x41 (k4, s1) and 900 s for x52 (k5).
func AnalyticsDataset(org string, t0 time.Time) []schema.Event {
	var out []schema.Event
	rev := map[string]uint64{}
	last := map[string]Record{}
	emit := func(offset time.Duration, taskID string, e schema.Entity, id string, after Record) {
		key := string(e) + "/" + id
		rev[key]++
		c := Change{Org: org, Task: taskID, Entity: e, EntityID: id, Revision: rev[key], ObservedAt: t0.Add(offset)}
		switch {
		case after == nil:
			c.Op, c.Before = schema.OpDeleted, last[key]
		case last[key] == nil:
			c.Op, c.After = schema.OpCreated, after
		default:
			c.Op, c.Before, c.After = schema.OpUpdated, last[key], after
		}
		last[key] = after
		out = append(out, NewEvent(c))
	}
	snapshot := func(offset time.Duration, taskID string, e schema.Entity, id string, after Record) {
		key := string(e) + "/" + id
		rev[key]++
		last[key] = after
		out = append(out, NewEvent(Change{Org: org, Task: taskID, Entity: e, EntityID: id, Op: schema.OpSnapshot,
			Revision: rev[key], After: after, ObservedAt: t0.Add(offset)}))
	}
	session := TestSession
	const T1, T2 = "T1", "T2"
	ticket := func(taskID, id string, loggedIn bool) Record {
		r := Ticket(org, taskID, id)
		r["loggedIn"] = loggedIn
		return r
	}
	ignored := func(r Record) Record { r["ignored"] = true; return r }
	sec := time.Second

	snapshot(0, T1, schema.EntityTask, T1, Task(org, T1))
	snapshot(0, T1, schema.EntityTicket, "k1", ticket(T1, "k1", false))
	snapshot(0, T1, schema.EntityTicket, "k2", ticket(T1, "k2", true))
	snapshot(0, T1, schema.EntityTestSession, "x42", session(org, T1, "x42", "k4", "s2", "COMPLETE", 0.4))
	emit(10*sec, T1, schema.EntityTicket, "k3", ticket(T1, "k3", false))
	emit(20*sec, T1, schema.EntityTicket, "k3", ticket(T1, "k3", true))
	emit(30*sec, T1, schema.EntityTestSession, "x31", session(org, T1, "x31", "k3", "s1", "STARTED", 0))
	emit(10*sec, T1, schema.EntityTicket, "k4", ticket(T1, "k4", true))
	emit(100*sec, T1, schema.EntityTestSession, "x41", session(org, T1, "x41", "k4", "s1", "STARTED", 0))
	emit(700*sec, T1, schema.EntityTestSession, "x41", session(org, T1, "x41", "k4", "s1", "COMPLETE", 0.8))
	emit(10*sec, T1, schema.EntityTicket, "k5", ticket(T1, "k5", true))
	emit(50*sec, T1, schema.EntityTestSession, "x51", ignored(session(org, T1, "x51", "k5", "s1", "COMPLETE", 0.3)))
	emit(100*sec, T1, schema.EntityTestSession, "x52", session(org, T1, "x52", "k5", "s1", "STARTED", 0))
	emit(200*sec, T1, schema.EntityTestSession, "x52", session(org, T1, "x52", "k5", "s1", "RESETUP", 0))
	emit(300*sec, T1, schema.EntityTestSession, "x52", session(org, T1, "x52", "k5", "s1", "STARTED", 0))
	emit(1000*sec, T1, schema.EntityTestSession, "x52", session(org, T1, "x52", "k5", "s1", "COMPLETE", 0.55))
	emit(1100*sec, T1, schema.EntityTestSession, "x53", session(org, T1, "x53", "k5", "s2", "STARTED", 0))
	emit(10*sec, T1, schema.EntityTicket, "k6", ticket(T1, "k6", false))
	emit(500*sec, T1, schema.EntityTicket, "k6", nil)
	snapshot(0, T2, schema.EntityTicket, "k7", ticket(T2, "k7", true))
	snapshot(0, T2, schema.EntityTestSession, "x71", session(org, T2, "x71", "k7", "a", "COMPLETE", 1.0))
	return out
}

// Load returns n events of a busy organization, for load tests and benchmarks: in each group of
// four, a ticket is created, starts a session, the session completes and the ticket is updated. The
// records spread over ten tasks; ids and versions are unique and grow with the index.
func Load(n int, org string, t0 time.Time) []schema.Event { return LoadRange(0, n, org, t0) }

// LoadRange returns the events of Load(to) from index from on, without building the ones before.
// from must be a multiple of four.
func LoadRange(from, to int, org string, t0 time.Time) []schema.Event {
	n := to - from
	out := make([]schema.Event, 0, n)
	for i := from / 4; len(out) < n; i++ {
		taskID := "T" + strconv.Itoa(i%10)
		ticketID := "k" + strconv.Itoa(i)
		sessionID := "x" + strconv.Itoa(i)
		at := t0.Add(time.Duration(i) * time.Second)
		ticket := Ticket(org, taskID, ticketID)
		started := TestSession(org, taskID, sessionID, ticketID, "s1", "STARTED", 0)
		done := TestSession(org, taskID, sessionID, ticketID, "s1", "COMPLETE", float64(i%100)/100)
		loggedIn := ticket.Clone()
		loggedIn["loggedIn"] = true
		group := []Change{
			{Org: org, Task: taskID, Entity: schema.EntityTicket, EntityID: ticketID, Op: schema.OpCreated, Revision: 1, After: ticket, ObservedAt: at},
			{Org: org, Task: taskID, Entity: schema.EntityTestSession, EntityID: sessionID, Op: schema.OpCreated, Revision: 1, After: started, ObservedAt: at.Add(time.Millisecond)},
			{Org: org, Task: taskID, Entity: schema.EntityTestSession, EntityID: sessionID, Op: schema.OpUpdated, Revision: 2, Before: started, After: done, ObservedAt: at.Add(2 * time.Millisecond)},
			{Org: org, Task: taskID, Entity: schema.EntityTicket, EntityID: ticketID, Op: schema.OpUpdated, Revision: 2, Before: ticket, After: loggedIn, ObservedAt: at.Add(3 * time.Millisecond)},
		}
		for _, c := range group {
			if len(out) == n {
				break
			}
			out = append(out, NewEvent(c))
		}
	}
	return out
}
