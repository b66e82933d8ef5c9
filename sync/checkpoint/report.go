package checkpoint

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/diff"
)

// Report describes one checkpoint for an operator: its metadata, how its records spread over one
// telling field, and a few records.
type Report struct {
	Meta Meta
	// CountField is the top-level field the records are counted by (see CountField).
	CountField string
	// Counts holds the number of records per canonical value of CountField, most frequent first;
	// "(missing)" counts records without the field.
	Counts []ValueCount
	// Samples holds the first records of the snapshot, in scan order.
	Samples []diff.Record
}

// ValueCount is the number of records with one value of a field.
type ValueCount struct {
	Value string
	Count int
}

// CountField returns the field by which Show counts the records of an entity: active for tasks,
// loggedIn for tickets and status for test sessions.
func CountField(e schema.Entity) string {
	switch e {
	case schema.EntityTask:
		return "active"
	case schema.EntityTicket:
		return "loggedIn"
	case schema.EntityTestSession:
		return "status"
	}
	return ""
}

// Show loads one checkpoint and describes it with up to samples records. It returns the errors of
// Store.Meta and Store.Load; with a *CorruptError the report still holds the metadata.
func Show(ctx context.Context, store Store, key Key, samples int) (Report, error) {
	meta, err := store.Meta(ctx, key)
	if err != nil {
		return Report{Meta: Meta{Key: key}}, err
	}
	r := Report{Meta: meta, CountField: CountField(key.Entity)}
	snap, loaded, err := store.Load(ctx, key)
	if err != nil {
		return r, err
	}
	r.Meta = loaded
	if snap == nil {
		return r, nil
	}
	counts := map[string]int{}
	for rec := range snap.Records() {
		v, ok := diff.Field(rec.Data, r.CountField)
		value := "(missing)"
		if ok {
			value = string(v)
		}
		counts[value]++
		if len(r.Samples) < samples {
			r.Samples = append(r.Samples, rec)
		}
	}
	for v, n := range counts {
		r.Counts = append(r.Counts, ValueCount{Value: v, Count: n})
	}
	slices.SortFunc(r.Counts, func(a, b ValueCount) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), strings.Compare(a.Value, b.Value))
	})
	return r, nil
}

// WriteList writes metadata as the table of tisync checkpoint list: one line per checkpoint.
func WriteList(w io.Writer, metas []Meta) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ORGANIZATION\tTASK\tENTITY\tRECORDS\tRECORD BYTES\tSTORED BYTES\tSTORED %\tFORMAT\tREVISION MARK\tLAST COMPLETE SCAN\tSTATE")
	for _, m := range metas {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\t%d\t%d\t%s\t%s\n",
			m.Key.OrganizationID, m.Key.task(), m.Key.Entity, m.Records, m.RecordBytes, m.StoredBytes,
			storedShare(m), m.FormatVersion, m.HighWater.Revision, formatTime(m.LastCompleteScan), state(m))
	}
	return tw.Flush()
}

// WriteReport writes a report as tisync checkpoint show prints it.
func WriteReport(w io.Writer, r Report) error {
	m := r.Meta
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "checkpoint\t%s\n", m.Key)
	fmt.Fprintf(tw, "state\t%s\n", state(m))
	fmt.Fprintf(tw, "object\t%s\n", cmp.Or(m.Object, "-"))
	fmt.Fprintf(tw, "format version\t%d\n", m.FormatVersion)
	fmt.Fprintf(tw, "records\t%d (%d tombstones)\n", m.Records, m.Tombstones)
	fmt.Fprintf(tw, "record bytes\t%d\n", m.RecordBytes)
	fmt.Fprintf(tw, "stored bytes\t%d (%s of record bytes)\n", m.StoredBytes, storedShare(m))
	fmt.Fprintf(tw, "saved at\t%s\n", formatTime(m.SavedAt))
	fmt.Fprintf(tw, "last complete scan\t%s\n", formatTime(m.LastCompleteScan))
	fmt.Fprintf(tw, "revision high-water\t%d\n", m.HighWater.Revision)
	fmt.Fprintf(tw, "revision floor\t%d\n", m.RevisionFloor)
	fmt.Fprintf(tw, "version high-water\t%d\n", m.HighWater.Version)
	fmt.Fprintf(tw, "reset at\t%s\n", formatTime(m.ResetAt))
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(r.Counts) > 0 {
		fmt.Fprintf(w, "\nrecords by %s:\n", r.CountField)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		for _, c := range r.Counts {
			fmt.Fprintf(tw, "  %s\t%d\t\n", c.Value, c.Count)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if len(r.Samples) > 0 {
		fmt.Fprintf(w, "\nsample records:\n")
		for _, s := range r.Samples {
			fmt.Fprintf(w, "  %s revision %d hash %s\n    %s\n", s.ID, s.Revision, schema.FormatHash(s.ContentHash), s.Data)
		}
	}
	return nil
}

func storedShare(m Meta) string {
	if m.RecordBytes == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(m.StoredBytes)/float64(m.RecordBytes))
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// state sums up what the next scan of a checkpoint does.
func state(m Meta) string {
	switch {
	case m.Unreadable != "":
		return "unreadable: reset required"
	case m.Pending != "":
		return "interrupted poll: the next poll finishes it"
	case m.Object == "" && !m.ResetAt.IsZero():
		return "reset: next scan loads a full snapshot"
	case m.Object == "":
		return "empty: next scan loads a full snapshot"
	case m.ResyncRequested:
		return "resync requested"
	case m.LastCompleteScan.IsZero():
		return "initial load in progress"
	}
	return "ok"
}
