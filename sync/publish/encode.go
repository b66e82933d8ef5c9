package publish

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/tisync/tisync/schema"
)

// appendEvent appends the JSON encoding of ev to dst, with the members in the order of the
// schema.Event fields. It writes the same document as json.Marshal, apart from escaping: strings
// escape only what JSON requires, and Before and After are copied as they are, because they are
// compact canonical JSON from the diff's normalizer already. encoding/json would parse and compact
// them again, which made it the largest cost of publishing a large initial load.
func appendEvent(dst []byte, ev *schema.Event) []byte {
	d := &ev.Data
	dst = append(dst, `{"specversion":`...)
	dst = appendString(dst, ev.SpecVersion)
	dst = append(dst, `,"id":`...)
	dst = appendString(dst, ev.ID)
	dst = append(dst, `,"source":`...)
	dst = appendString(dst, ev.Source)
	dst = append(dst, `,"type":`...)
	dst = appendString(dst, ev.Type)
	dst = append(dst, `,"subject":`...)
	dst = appendString(dst, ev.Subject)
	dst = append(dst, `,"time":`...)
	dst = appendTime(dst, ev.Time)
	dst = append(dst, `,"datacontenttype":`...)
	dst = appendString(dst, ev.DataContentType)
	dst = append(dst, `,"dataschema":`...)
	dst = appendString(dst, ev.DataSchema)

	dst = append(dst, `,"data":{"organization_id":`...)
	dst = appendString(dst, d.OrganizationID)
	dst = append(dst, `,"task_id":`...)
	dst = appendString(dst, d.TaskID)
	dst = append(dst, `,"entity":`...)
	dst = appendString(dst, string(d.Entity))
	dst = append(dst, `,"entity_id":`...)
	dst = appendString(dst, d.EntityID)
	dst = append(dst, `,"op":`...)
	dst = appendString(dst, string(d.Op))
	dst = append(dst, `,"revision":`...)
	dst = strconv.AppendUint(dst, d.Revision, 10)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendUint(dst, d.Version, 10)
	dst = append(dst, `,"observed_at":`...)
	dst = appendTime(dst, d.ObservedAt)
	dst = append(dst, `,"content_hash":`...)
	dst = appendString(dst, d.ContentHash)
	dst = append(dst, `,"changed_fields":`...)
	if d.ChangedFields == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, '[')
		for i, f := range d.ChangedFields {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendString(dst, f)
		}
		dst = append(dst, ']')
	}
	dst = append(dst, `,"before":`...)
	dst = appendRaw(dst, d.Before)
	dst = append(dst, `,"after":`...)
	dst = appendRaw(dst, d.After)
	return append(dst, "}}"...)
}

func appendRaw(dst, raw []byte) []byte {
	if len(raw) == 0 {
		return append(dst, "null"...)
	}
	return append(dst, raw...)
}

// appendTime writes t as encoding/json does: an RFC 3339 string with nanoseconds when there are any.
func appendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. Invalid UTF-8 becomes U+FFFD, as in encoding/json.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
