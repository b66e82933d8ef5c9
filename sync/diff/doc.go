// Package diff finds what changed in TestInvite between two scans. TestInvite offers no change feed,
// so every scan of one entity (tasks, tickets or test sessions) of one task is compared with the
// snapshot of the previous scan.
//
// Each record is brought into a canonical JSON form (see Normalizer for the rules) and hashed with
// XXH3; the normalized bytes are the before and after images of events. A record whose raw bytes
// hash the same as last time is not parsed again, which makes a scan of unchanged records cost
// little more than hashing them.
//
// A poll uses the package like this:
//
//	scan, err := diff.NewScan(diff.Options{OrganizationID: org, TaskID: task, Entity: e,
//		Prev: snap, RevisionFloor: floor, HighWater: hw, ObservedAt: start})
//	for each record of each page {
//		err := scan.Add(id, raw) // a *RecordError skips the record; the scan goes on
//	}
//	missing := scan.Missing()   // complete scans: confirm each with a point lookup,
//	scan.Add(id, raw)           // add the records found again,
//	res, err := scan.Finish(diff.Complete, gone) // and pass the ones confirmed gone
//	for c := range res.All() { publish c }
//	// after every publish was acknowledged: store res.Next
//
// Revisions count the changes of one record and never repeat for it. A change increments the
// record's revision, and a deleted record keeps its revision in a tombstone. The records of a
// snapshot built after a checkpoint reset start above the revision high-water mark of the reset
// checkpoint. Event ids are schema.EventID of organization, task, entity, record id, revision and
// content hash, so the same change detected twice from the same previous snapshot gets the same id.
package diff
