package testinvite

import (
	"context"
	"fmt"
	"io"
	"iter"
	"time"

	"github.com/zeebo/xxh3"
	"go.uber.org/zap"
)

// Page is one page of a scan.
type Page[T Record] struct {
	// Number is the 1-based position of the page in the scan (not the page parameter sent).
	Number int
	// Records are the records first seen in this scan on this page, in API order.
	Records []T
	// Duplicates is the number of records of the page already returned earlier in the scan and
	// left out of Records.
	Duplicates int
	// Short reports whether the page held fewer records than requested without being the last.
	Short bool
	// Pagination is the pagination block as the server sent it.
	Pagination Pagination
}

// Totals are the totalItems and totalPages of one page.
type Totals struct {
	Items int
	Pages int
	// Known reports whether the page carried both totals. Cursor searches carry none.
	Known bool
}

// ScanStats describes one scan. It is complete once Next has returned io.EOF.
type ScanStats struct {
	// Endpoint is the route template of the scan.
	Endpoint string
	// Cursor reports whether the scan used the cursor search rather than offset pages.
	Cursor bool
	// Pages is the number of pages read.
	Pages int
	// Records is the number of distinct records returned.
	Records int
	// Duplicates is the number of records seen again and dropped.
	Duplicates int
	// ShortPages is the number of pages that held fewer records than requested without being the
	// last.
	ShortPages int
	// TypeMismatches is the number of records with a field of an unexpected JSON type; their Raw
	// is intact.
	TypeMismatches int
	// PageSize is the page size requested by the first page; LastPageSize the one requested by
	// the last, smaller when the client adapted to a server-side cap.
	PageSize     int
	LastPageSize int
	// FirstTotals and LastTotals are the totals of the first and of the last page.
	FirstTotals Totals
	LastTotals  Totals
	// TotalsConsistent reports whether every page reported the same totalItems as the first page
	// and the same totalPages as the first page requested with the same page size. It is true
	// for cursor searches, which report no totals.
	TotalsConsistent bool
	// Realigned reports whether the client adapted the page size at an offset that was not a
	// multiple of the new size, so that it read some records twice to avoid skipping any.
	Realigned bool
	// Complete reports whether the scan read the last page without error.
	Complete bool
	// Duration is the time from the first request to the last response.
	Duration time.Duration
}

// Exhaustive reports whether the scan read every page without error and, for offset lists,
// whether every page reported totals, the totals stayed consistent and the number of distinct
// records equals the last totalItems. Only an exhaustive scan shows that a record missing from it
// is gone from the server. A cursor search reports no totals, so only its completeness counts.
func (s ScanStats) Exhaustive() bool {
	if !s.Complete {
		return false
	}
	if s.Cursor {
		return true
	}
	return s.TotalsConsistent && s.LastTotals.Known && s.Records == s.LastTotals.Items
}

// fetchFunc requests one page: page is the 1-based page number of offset lists, cursor the
// lastDocId of cursor searches ("" for the first page).
type fetchFunc[T Record] func(ctx context.Context, limit, page int, cursor string) ([]T, Pagination, error)

// Scanner reads every page of one list or search, de-duplicating records by id and checking that
// the pages agree with each other. Build one with a Client method such as ListCandidates; a Scanner
// is for one scan by one goroutine.
//
// Memory stays bounded by one page plus 16 bytes per distinct record id (a 128-bit hash used to
// drop duplicates).
type Scanner[T Record] struct {
	c          *Client
	endpoint   string
	cursorMode bool
	fetch      fetchFunc[T]

	limit  int
	page   int    // next offset page to request
	cursor string // next cursor to send
	// position is the offset of the first record not yet read, counting from the start of the
	// list: every record before it was on a page read in this scan.
	position int

	seen        map[[16]byte]struct{}
	pageHashes  map[uint64]int
	cursors     map[string]struct{}
	totalsLimit int // page size under which FirstTotals.Pages was reported
	basePages   int

	stats   ScanStats
	started time.Time
	done    bool
	err     error
}

func newScanner[T Record](c *Client, endpoint string, cursorMode bool, pageSize int, fetch fetchFunc[T]) *Scanner[T] {
	if pageSize <= 0 {
		pageSize = c.cfg.PageSize
	}
	if capSize, ok := c.caps.Load(endpoint); ok && capSize.(int) < pageSize {
		pageSize = capSize.(int)
	}
	return &Scanner[T]{
		c:          c,
		endpoint:   endpoint,
		cursorMode: cursorMode,
		fetch:      fetch,
		limit:      pageSize,
		page:       1,
		seen:       map[[16]byte]struct{}{},
		pageHashes: map[uint64]int{},
		cursors:    map[string]struct{}{},
		stats:      ScanStats{Endpoint: endpoint, Cursor: cursorMode, PageSize: pageSize, LastPageSize: pageSize, TotalsConsistent: true},
	}
}

// failedScanner returns a Scanner whose Next returns err.
func failedScanner[T Record](c *Client, endpoint string, err error) *Scanner[T] {
	s := newScanner[T](c, endpoint, false, 0, nil)
	s.err = err
	return s
}

// Stats returns the statistics of the scan so far.
func (s *Scanner[T]) Stats() ScanStats { return s.stats }

// Next reads the next page. It returns io.EOF after the last page. Other errors end the scan and
// are returned again by later calls: the errors of the request (*APIError, *DecodeError,
// *RetryError, ctx's error) wrapped with the page, and a *PaginationError matching
// ErrRepeatedPage, ErrCursorNotAdvancing or ErrInconsistentPagination.
func (s *Scanner[T]) Next(ctx context.Context) (Page[T], error) {
	if s.err != nil {
		return Page[T]{}, s.err
	}
	if s.done {
		return Page[T]{}, io.EOF
	}
	if s.started.IsZero() {
		s.started = s.c.clock.Now()
	}
	page, err := s.next(ctx)
	s.stats.Duration = s.c.clock.Now().Sub(s.started)
	if err != nil {
		s.err = err
		return Page[T]{}, err
	}
	return page, nil
}

func (s *Scanner[T]) next(ctx context.Context) (Page[T], error) {
	sentPage, sentCursor, limit := s.page, s.cursor, s.limit
	items, pg, err := s.fetch(ctx, limit, sentPage, sentCursor)
	if err != nil {
		return Page[T]{}, fmt.Errorf("scan page %d: %w", s.stats.Pages+1, err)
	}
	s.stats.Pages++
	s.stats.LastPageSize = limit
	out := Page[T]{Number: s.stats.Pages, Pagination: pg}
	fail := func(kind error, format string, args ...any) (Page[T], error) {
		return Page[T]{}, &PaginationError{Endpoint: s.endpoint, Page: out.Number, Cursor: sentCursor, Reason: fmt.Sprintf(format, args...), Kind: kind}
	}

	// More records than requested means the server used a page size of its own, which would
	// break the offset arithmetic.
	if len(items) > limit {
		return fail(ErrInconsistentPagination, "page holds %d records, more than the %d requested", len(items), limit)
	}

	// A cursor that was already used would lead back to pages already read.
	var last bool
	if s.cursorMode && pg.LastDocID != nil && *pg.LastDocID != "" {
		next := *pg.LastDocID
		if _, used := s.cursors[next]; used || next == sentCursor {
			return fail(ErrCursorNotAdvancing, "next cursor %q was already used", next)
		}
		s.cursors[next] = struct{}{}
		s.cursor = next
	}

	// A page whose ids, in order, equal an earlier page's is the server ignoring the position
	// sent; going on would loop.
	if len(items) > 0 {
		h := xxh3.New()
		for i := range items {
			h.WriteString(recordID(&items[i]))
			h.Write([]byte{0})
		}
		sum := h.Sum64()
		if prev, ok := s.pageHashes[sum]; ok {
			return fail(ErrRepeatedPage, "same %d records as page %d", len(items), prev)
		}
		s.pageHashes[sum] = out.Number
	}

	// Records are compacted in place: items is this page's own slice.
	out.Records = items[:0]
	for i := range items {
		key := xxh3.HashString128(recordID(&items[i])).Bytes()
		if _, dup := s.seen[key]; dup {
			out.Duplicates++
			continue
		}
		s.seen[key] = struct{}{}
		if recordTypeErr(&items[i]) != nil {
			s.stats.TypeMismatches++
			s.c.metrics.typeMismatches.WithLabelValues(s.endpoint).Inc()
			if ce := s.c.log.Check(zap.DebugLevel, "record field of unexpected type"); ce != nil {
				ce.Write(zap.String("endpoint", s.endpoint), zap.String("record_id", recordID(&items[i])), zap.Error(recordTypeErr(&items[i])))
			}
		}
		out.Records = append(out.Records, items[i])
	}
	s.stats.Records += len(out.Records)
	s.stats.Duplicates += out.Duplicates
	if out.Duplicates > 0 {
		s.c.metrics.duplicates.WithLabelValues(s.endpoint).Add(float64(out.Duplicates))
	}

	if s.cursorMode {
		last = pg.LastDocID == nil || *pg.LastDocID == ""
	} else {
		last = pg.Next == nil
		s.trackTotals(pg, limit)
		if !last && len(items) == 0 {
			return fail(ErrInconsistentPagination, "empty page announces a next page")
		}
		if !last && pg.HasTotals && sentPage >= pg.TotalPages+1 {
			return fail(ErrInconsistentPagination, "page %d announces a next page but totalPages is %d", sentPage, pg.TotalPages)
		}
	}

	short := !last && len(items) < limit
	if short {
		out.Short = true
		s.shortPage(len(items), pg.Limit)
	}
	if !s.cursorMode && !last {
		s.advanceOffset(sentPage, limit, len(items), short, pg.Limit)
	}
	if last {
		s.done = true
		s.stats.Complete = true
	}

	if ce := s.c.log.Check(zap.DebugLevel, "page read"); ce != nil {
		ce.Write(zap.String("endpoint", s.endpoint), zap.Int("page", out.Number), zap.Int("records", len(out.Records)),
			zap.Int("duplicates", out.Duplicates), zap.Int("limit", limit), zap.Bool("last", last))
	}
	return out, nil
}

// advanceOffset moves the read position past an offset page and picks the next page number.
//
// A full page with page number p under limit L held the records at offsets (p-1)*L to p*L-1. A
// short page under a server-side cap n is ambiguous: a server that computes the offset with its
// cap returned offsets (p-1)*n to p*n-1, one that computes it with the requested limit returned
// (p-1)*L onwards. Unless the server reported the requested limit, the position assumes the
// first, which never lies beyond the second, so the scan may re-read records (dropped as
// duplicates) but never skips any. The next page is the page under the current limit that holds
// the position, rounded down for the same reason.
func (s *Scanner[T]) advanceOffset(sentPage, limit, n int, short bool, reportedLimit int) {
	offset := (sentPage - 1) * limit
	switch {
	case !short:
		s.position = offset + n
	case reportedLimit == limit:
		s.position = max(s.position, offset+n)
	default:
		s.position = max(s.position, sentPage*s.limit)
	}
	s.page = s.position/s.limit + 1
	if s.position%s.limit != 0 {
		s.stats.Realigned = true
	}
}

// trackTotals compares the totals of an offset page with the first page's.
func (s *Scanner[T]) trackTotals(pg Pagination, limit int) {
	t := Totals{Items: pg.TotalItems, Pages: pg.TotalPages, Known: pg.HasTotals}
	if s.stats.Pages == 1 {
		s.stats.FirstTotals = t
		s.totalsLimit, s.basePages = limit, t.Pages
	} else {
		first := s.stats.FirstTotals
		if t.Known != first.Known || t.Items != first.Items {
			s.stats.TotalsConsistent = false
		}
		if limit != s.totalsLimit {
			// totalPages depends on the page size; compare from here on under the new size.
			s.totalsLimit, s.basePages = limit, t.Pages
		} else if t.Pages != s.basePages {
			s.stats.TotalsConsistent = false
		}
	}
	s.stats.LastTotals = t
}

// shortPage records a page that held n records where more were requested and adapts the page size
// of this scan, and of later scans of the endpoint, to the cap the server showed.
func (s *Scanner[T]) shortPage(n, reportedLimit int) {
	s.stats.ShortPages++
	s.c.metrics.shortPages.WithLabelValues(s.endpoint).Inc()
	newLimit := n
	if reportedLimit > 0 && reportedLimit < s.limit {
		newLimit = reportedLimit
	}
	if newLimit < 1 {
		return
	}
	if _, warned := s.c.warned.LoadOrStore(s.endpoint, struct{}{}); !warned {
		s.c.log.Warn("server returned a short page that is not the last; using its size as the page size",
			zap.String("endpoint", s.endpoint), zap.Int("requested", s.limit), zap.Int("received", n),
			zap.Int("reported_limit", reportedLimit))
	}
	if newLimit < s.limit {
		s.limit = newLimit
		s.c.caps.Store(s.endpoint, newLimit)
	}
}

// Pages returns an iterator over the remaining pages. It stops after the last page or at the
// first error, which it yields with a zero Page.
func (s *Scanner[T]) Pages(ctx context.Context) iter.Seq2[Page[T], error] {
	return func(yield func(Page[T], error) bool) {
		for {
			p, err := s.Next(ctx)
			if err == io.EOF {
				return
			}
			if !yield(p, err) || err != nil {
				return
			}
		}
	}
}

// All returns an iterator over the remaining records, page by page. It stops after the last page
// or at the first error, which it yields with a zero record.
func (s *Scanner[T]) All(ctx context.Context) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for p, err := range s.Pages(ctx) {
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, r := range p.Records {
				if !yield(r, nil) {
					return
				}
			}
		}
	}
}

// Collect reads every remaining page and returns the records and the final statistics.
func (s *Scanner[T]) Collect(ctx context.Context) ([]T, ScanStats, error) {
	var out []T
	for r, err := range s.All(ctx) {
		if err != nil {
			return out, s.Stats(), err
		}
		out = append(out, r)
	}
	return out, s.Stats(), nil
}
