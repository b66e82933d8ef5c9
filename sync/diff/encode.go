package diff

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/tisync/tisync/schema"
)

// Encoded snapshot format, version 1. All integers are little-endian.
//
//	magic         8 bytes  "TISYNCSN"
//	version       uint32   FormatVersion
//	header length uint32
//	header        organization id, task id and entity (each a uvarint length and bytes), then
//	              uvarints: entries, data bytes, live records, record bytes, revision floor,
//	              revision and version high-water marks. Then a byte that is 1 after a complete
//	              scan, and the last complete scan as a zig-zag varint of Unix microseconds.
//	header hash   uint64   XXH3 of the header
//	columns       one value per entry, in snapshot order: id lengths (uint8), flags (uint8), record
//	              lengths (uint32), revisions (uint64), raw hashes (uint64), content hashes (uint64)
//	data          per entry, the id bytes followed by the normalized record (none for a tombstone)
//	checksum      uint64   XXH3 of every byte before it
//
// Columns of fixed-width values keep the encoder and decoder simple and compress well. The
// header has its own hash so that a damaged header is reported before the decoder allocates what
// it declares.
const (
	formatMagic = "TISYNCSN"
	// FormatVersion is the version of the encoded snapshot format that WriteTo writes.
	FormatVersion = 1

	maxHeaderBytes = 64 << 10
	maxEntries     = 1 << 31
	columnBytes    = 1 + 1 + 4 + 8 + 8 + 8 // bytes per entry in the columns
	blockEntries   = 16 << 10              // entries per column block written or read at once
)

// WriteTo writes the snapshot in the encoded format to w. It returns the number of bytes written
// and the first error of w.
func (s *Snapshot) WriteTo(w io.Writer) (int64, error) {
	h := xxh3.New()
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(io.MultiWriter(cw, h), 256<<10)

	var dataBytes int64
	for i := range s.entries {
		dataBytes += int64(s.entries[i].idLen) + int64(s.entries[i].recLen)
	}
	var hdr []byte
	for _, str := range []string{s.organizationID, s.taskID, string(s.entity)} {
		hdr = binary.AppendUvarint(hdr, uint64(len(str)))
		hdr = append(hdr, str...)
	}
	for _, v := range []uint64{uint64(len(s.entries)), uint64(dataBytes), uint64(s.records), uint64(s.recordBytes), s.floor, s.high.Revision, s.high.Version} {
		hdr = binary.AppendUvarint(hdr, v)
	}
	if s.lastComplete.IsZero() {
		hdr = append(hdr, 0)
		hdr = binary.AppendVarint(hdr, 0)
	} else {
		hdr = append(hdr, 1)
		hdr = binary.AppendVarint(hdr, s.lastComplete.UnixMicro())
	}

	buf := make([]byte, 0, blockEntries*8)
	buf = append(buf, formatMagic...)
	buf = binary.LittleEndian.AppendUint32(buf, FormatVersion)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(len(hdr)))
	buf = append(buf, hdr...)
	buf = binary.LittleEndian.AppendUint64(buf, xxh3.Hash(hdr))
	bw.Write(buf)

	// Each column is written in blocks so that the encoder needs no column-sized buffer.
	column := func(put func(b []byte, e *entry) []byte) {
		for start := 0; start < len(s.entries); start += blockEntries {
			buf = buf[:0]
			for i := start; i < min(start+blockEntries, len(s.entries)); i++ {
				buf = put(buf, &s.entries[i])
			}
			bw.Write(buf)
		}
	}
	column(func(b []byte, e *entry) []byte { return append(b, e.idLen) })
	column(func(b []byte, e *entry) []byte { return append(b, e.flags) })
	column(func(b []byte, e *entry) []byte { return binary.LittleEndian.AppendUint32(b, e.recLen) })
	column(func(b []byte, e *entry) []byte { return binary.LittleEndian.AppendUint64(b, e.revision) })
	column(func(b []byte, e *entry) []byte { return binary.LittleEndian.AppendUint64(b, e.rawHash) })
	column(func(b []byte, e *entry) []byte { return binary.LittleEndian.AppendUint64(b, e.hash) })
	for i := range s.entries {
		e := &s.entries[i]
		bw.Write(entryID(s.chunks, e))
		bw.Write(entryRecord(s.chunks, e))
	}
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	if _, err := cw.Write(binary.LittleEndian.AppendUint64(nil, h.Sum64())); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// snapshotReader reads sections of an encoded snapshot and hashes every byte it consumes.
type snapshotReader struct {
	r io.Reader
	h *xxh3.Hasher
}

func (r *snapshotReader) full(b []byte) error {
	if _, err := io.ReadFull(r.r, b); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("truncated: %w", ErrCorruptSnapshot)
		}
		return err
	}
	r.h.Write(b)
	return nil
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, ErrCorruptSnapshot)...)
}

// ReadSnapshot decodes a snapshot that WriteTo wrote. It returns an error wrapping
// ErrUnknownFormat for another format version, ErrCorruptSnapshot for bytes that fail a check
// (magic, hashes, sizes, unique ids, record bounds), or the error of r.
func ReadSnapshot(r io.Reader) (*Snapshot, error) {
	sr := &snapshotReader{r: bufio.NewReaderSize(r, 256<<10), h: xxh3.New()}
	var fixed [16]byte
	if err := sr.full(fixed[:16]); err != nil {
		return nil, err
	}
	if string(fixed[:8]) != formatMagic {
		return nil, corrupt("not a tisync snapshot (magic %q)", fixed[:8])
	}
	if v := binary.LittleEndian.Uint32(fixed[8:12]); v != FormatVersion {
		return nil, fmt.Errorf("format version %d, this build reads version %d: %w", v, FormatVersion, ErrUnknownFormat)
	}
	hdrLen := binary.LittleEndian.Uint32(fixed[12:16])
	if hdrLen > maxHeaderBytes {
		return nil, corrupt("header of %d bytes", hdrLen)
	}
	hdr := make([]byte, hdrLen+8)
	if err := sr.full(hdr); err != nil {
		return nil, err
	}
	if xxh3.Hash(hdr[:hdrLen]) != binary.LittleEndian.Uint64(hdr[hdrLen:]) {
		return nil, corrupt("header hash mismatch")
	}
	s, count, dataBytes, err := parseHeader(hdr[:hdrLen])
	if err != nil {
		return nil, err
	}

	s.entries = make([]entry, count)
	buf := make([]byte, blockEntries*8)
	column := func(width int, set func(e *entry, b []byte)) error {
		for start := 0; start < count; start += blockEntries {
			n := min(blockEntries, count-start)
			b := buf[:n*width]
			if err := sr.full(b); err != nil {
				return err
			}
			for i := range n {
				set(&s.entries[start+i], b[i*width:])
			}
		}
		return nil
	}
	le := binary.LittleEndian
	for _, c := range []struct {
		width int
		set   func(e *entry, b []byte)
	}{
		{1, func(e *entry, b []byte) { e.idLen = b[0] }},
		{1, func(e *entry, b []byte) { e.flags = b[0] }},
		{4, func(e *entry, b []byte) { e.recLen = le.Uint32(b) }},
		{8, func(e *entry, b []byte) { e.revision = le.Uint64(b) }},
		{8, func(e *entry, b []byte) { e.rawHash = le.Uint64(b) }},
		{8, func(e *entry, b []byte) { e.hash = le.Uint64(b) }},
	} {
		if err := column(c.width, c.set); err != nil {
			return nil, err
		}
	}

	var off int64
	for i := range s.entries {
		e := &s.entries[i]
		e.ref = makeRef(0, int(off))
		off += int64(e.idLen) + int64(e.recLen)
	}
	if off != dataBytes {
		return nil, corrupt("entries hold %d data bytes, header says %d", off, dataBytes)
	}
	data := make([]byte, dataBytes)
	if err := sr.full(data); err != nil {
		return nil, err
	}
	s.chunks = [][]byte{data}
	var sum [8]byte
	if _, err := io.ReadFull(sr.r, sum[:]); err != nil {
		return nil, corrupt("checksum missing")
	}
	if sr.h.Sum64() != le.Uint64(sum[:]) {
		return nil, corrupt("checksum mismatch")
	}
	if n, _ := sr.r.Read(sum[:1]); n != 0 {
		return nil, corrupt("data after the checksum")
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

func parseHeader(hdr []byte) (s *Snapshot, count int, dataBytes int64, err error) {
	rd := bytes.NewReader(hdr)
	str := func() (string, error) {
		n, err := binary.ReadUvarint(rd)
		if err != nil || n > 128 || int(n) > rd.Len() {
			return "", corrupt("header string")
		}
		b := make([]byte, n)
		rd.Read(b)
		return string(b), nil
	}
	s = &Snapshot{}
	var entity string
	for _, p := range []*string{&s.organizationID, &s.taskID, &entity} {
		if *p, err = str(); err != nil {
			return nil, 0, 0, err
		}
	}
	s.entity = schema.Entity(entity)
	var v [7]uint64
	for i := range v {
		if v[i], err = binary.ReadUvarint(rd); err != nil {
			return nil, 0, 0, corrupt("header field %d", i)
		}
	}
	complete, err := rd.ReadByte()
	if err != nil {
		return nil, 0, 0, corrupt("header complete flag")
	}
	micros, err := binary.ReadVarint(rd)
	if err != nil || rd.Len() != 0 {
		return nil, 0, 0, corrupt("header last complete scan")
	}
	if complete == 1 {
		s.lastComplete = time.UnixMicro(micros).UTC()
	}
	if !s.entity.Valid() || !schema.ValidID(s.organizationID) || !(s.taskID == "" || schema.ValidID(s.taskID)) {
		return nil, 0, 0, corrupt("header names %q/%q/%q", s.organizationID, s.taskID, entity)
	}
	if v[0] > maxEntries || v[1] > v[0]*(128+MaxRecordBytes) || v[2] > v[0] {
		return nil, 0, 0, corrupt("header sizes %d entries, %d data bytes, %d records", v[0], v[1], v[2])
	}
	s.records, s.recordBytes, s.floor = int(v[2]), int64(v[3]), v[4]
	s.high = HighWater{Revision: v[5], Version: v[6]}
	return s, int(v[0]), int64(v[1]), nil
}

// check validates a decoded snapshot: ids valid and unique, records objects whose content hash
// matches, tombstones empty, and the header's totals right. It builds the id index on the way.
func (s *Snapshot) check() error {
	var records int
	var recordBytes int64
	s.index.init(len(s.entries))
	s.indexOnce.Do(func() {}) // the loop below builds the index
	for i := range s.entries {
		e := &s.entries[i]
		id := entryID(s.chunks, e)
		if !schema.ValidID(string(id)) {
			return corrupt("entry %d: invalid id %q", i, id)
		}
		h := xxh3.Hash(id)
		if s.index.find(h, func(j int) bool { return string(entryID(s.chunks, &s.entries[j])) == string(id) }) >= 0 {
			return corrupt("entry %d: id %q occurs twice", i, id)
		}
		s.index.insert(h, i)
		if e.flags&^flagTombstone != 0 {
			return corrupt("entry %q: unknown flags %#x", id, e.flags)
		}
		if e.tombstone() {
			if e.recLen != 0 {
				return corrupt("tombstone %q holds %d bytes", id, e.recLen)
			}
			continue
		}
		rec := entryRecord(s.chunks, e)
		if len(rec) < 2 || rec[0] != '{' || rec[len(rec)-1] != '}' || Hash(rec) != e.hash {
			return corrupt("record %q: not the normalized object its hash names", id)
		}
		records++
		recordBytes += int64(len(rec))
	}
	if records != s.records || recordBytes != s.recordBytes {
		return corrupt("%d records of %d bytes, header says %d of %d", records, recordBytes, s.records, s.recordBytes)
	}
	return nil
}
