package testinvite

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Pagination is the pagination block of a page as the server sent it. Offset lists fill the
// totals, CurrentPage, Next and Previous; the cursor search fills Limit, LastDocID and Next.
type Pagination struct {
	TotalItems  int
	TotalPages  int
	CurrentPage int
	Limit       int
	// HasTotals reports whether totalItems and totalPages were present.
	HasTotals bool
	// Next is the query string of the next page, such as "?limit=5&page=3&mode=basic"; nil on the
	// last page.
	Next *string
	// Previous is the query string of the previous page; nil on the first page.
	Previous *string
	// LastDocID is the cursor of the next search page; nil when there is nothing more.
	LastDocID *string
}

// wirePagination accepts numbers written as integers, fractions or strings.
type wirePagination struct {
	TotalItems  *json.Number `json:"totalItems"`
	TotalPages  *json.Number `json:"totalPages"`
	CurrentPage *json.Number `json:"currentPage"`
	Limit       *json.Number `json:"limit"`
	Next        *string      `json:"next"`
	Previous    *string      `json:"previous"`
	LastDocID   *string      `json:"lastDocId"`
}

func number(n *json.Number) (int, bool) {
	if n == nil {
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		return int(i), true
	}
	if f, err := n.Float64(); err == nil {
		return int(f), true
	}
	return 0, false
}

func (w *wirePagination) pagination() Pagination {
	p := Pagination{Next: w.Next, Previous: w.Previous, LastDocID: w.LastDocID}
	var hasItems, hasPages bool
	p.TotalItems, hasItems = number(w.TotalItems)
	p.TotalPages, hasPages = number(w.TotalPages)
	p.CurrentPage, _ = number(w.CurrentPage)
	p.Limit, _ = number(w.Limit)
	p.HasTotals = hasItems && hasPages
	return p
}

// itemsKey returns the member of a page that holds the records of type T.
func itemsKey[T Record]() string {
	var zero T
	switch any(zero).(type) {
	case Task:
		return "tasks"
	case Candidate:
		return "candidates"
	}
	return "testInstances"
}

// decodePage decodes a list or search response, bare or wrapped in payload. It returns a
// *DecodeError for an undecodable body, a body without pagination and a record without id.
func decodePage[T Record](endpoint string, body []byte, rawOnly bool) ([]T, Pagination, error) {
	raws, pgRaw, err := splitPage(body, itemsKey[T]())
	if err != nil {
		return nil, Pagination{}, newDecodeError(endpoint, body, err)
	}
	if pgRaw == nil {
		return nil, Pagination{}, newDecodeError(endpoint, body, errors.New("pagination missing"))
	}
	var wp wirePagination
	if err := json.Unmarshal(pgRaw, &wp); err != nil {
		return nil, Pagination{}, newDecodeError(endpoint, pgRaw, fmt.Errorf("pagination: %w", err))
	}
	items := make([]T, len(raws))
	if rawOnly {
		key := idKey[T]()
		for i, raw := range raws {
			id, err := memberString(raw, key)
			if err != nil {
				return nil, Pagination{}, newDecodeError(endpoint, raw, fmt.Errorf("record %d of the page: %w", i, err))
			}
			if id == "" {
				return nil, Pagination{}, newDecodeError(endpoint, raw, fmt.Errorf("record %d of the page has no %s", i, key))
			}
			setRaw(&items[i], id, raw)
		}
		return items, wp.pagination(), nil
	}
	for i, raw := range raws {
		// Calling the record's decoder directly skips a second validation of the whole page.
		if err := any(&items[i]).(json.Unmarshaler).UnmarshalJSON(raw); err != nil {
			return nil, Pagination{}, newDecodeError(endpoint, raw, fmt.Errorf("record %d of the page: %w", i, err))
		}
		if recordID(&items[i]) == "" {
			return nil, Pagination{}, newDecodeError(endpoint, raw, fmt.Errorf("record %d of the page has no %s", i, idKey[T]()))
		}
	}
	return items, wp.pagination(), nil
}

// decodeRecord decodes one record, bare or wrapped in payload. The record counts as wrapped when
// the top level lacks the id member and has a payload member.
func decodeRecord[T Record](endpoint string, body []byte) (T, error) {
	var rec T
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return rec, newDecodeError(endpoint, body, err)
	}
	inner := body
	if _, ok := top[idKey[T]()]; !ok {
		if p, ok := top["payload"]; ok {
			inner = p
		}
	}
	if err := json.Unmarshal(inner, &rec); err != nil {
		return rec, newDecodeError(endpoint, body, err)
	}
	if recordID(&rec) == "" {
		return rec, newDecodeError(endpoint, body, fmt.Errorf("record has no %s", idKey[T]()))
	}
	return rec, nil
}

func orBody(raw, body []byte) []byte {
	if len(raw) > 0 {
		return raw
	}
	return body
}

// newDecodeError builds a *DecodeError with an excerpt around the failure. Truncated and
// syntactically invalid bodies are marked retryable.
func newDecodeError(endpoint string, body []byte, err error) *DecodeError {
	var syntax *json.SyntaxError
	var split *syntaxError
	retryable := errors.As(err, &syntax) || errors.As(err, &split) || errors.Is(err, errTruncated) || errors.Is(err, io.ErrUnexpectedEOF)
	at := 0
	switch {
	case syntax != nil:
		at = int(syntax.Offset)
	case split != nil:
		at = split.offset
	case errors.Is(err, errTruncated):
		at = len(body)
	}
	return &DecodeError{Endpoint: endpoint, Body: string(excerpt(body, at)), Err: err, retryable: retryable}
}

// excerpt returns at most maxExcerpt bytes of body around offset at, cut at UTF-8 boundaries.
func excerpt(body []byte, at int) []byte {
	body = bytes.TrimSpace(body)
	if len(body) <= maxExcerpt {
		return body
	}
	start := max(0, min(at-maxExcerpt/2, len(body)-maxExcerpt))
	out := body[start : start+maxExcerpt]
	for len(out) > 0 && !utf8.RuneStart(out[0]) {
		out = out[1:]
	}
	for len(out) > 0 && !utf8.Valid(out) {
		out = out[:len(out)-1]
	}
	return out
}

// setRaw fills a record decoded in raw-only mode: its id and a copy of its bytes.
func setRaw[T Record](rec *T, id string, raw []byte) {
	switch r := any(rec).(type) {
	case *Task:
		r.ID, r.Raw = id, bytes.Clone(raw)
	case *Candidate:
		r.ID, r.Raw = id, bytes.Clone(raw)
	case *TestInstance:
		r.ID, r.Raw = id, bytes.Clone(raw)
	}
}
