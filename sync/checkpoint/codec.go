package checkpoint

import (
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"

	"github.com/tisync/tisync/sync/diff"
)

// A snapshot object is one zstd frame holding the encoded snapshot (diff's format, which starts
// with a magic and a format version and ends with a checksum).

// writeObject compresses the encoded snap into w.
func writeObject(w io.Writer, snap *diff.Snapshot, level zstd.EncoderLevel) error {
	enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(level), zstd.WithEncoderCRC(true))
	if err != nil {
		return fmt.Errorf("create zstd encoder: %w", err)
	}
	if _, err := snap.WriteTo(enc); err != nil {
		enc.Close()
		return err
	}
	return enc.Close()
}

// sourceError marks an error of the reader an object is read from, as opposed to an error in the
// object's content.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

type sourceReader struct{ r io.Reader }

func (s sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		err = &sourceError{err}
	}
	return n, err
}

// readObject decodes a snapshot object. An error in reading r is returned as it is. An error in
// the content is returned with content set, so the caller can tell a damaged checkpoint from a
// failed transfer.
func readObject(r io.Reader) (snap *diff.Snapshot, content bool, err error) {
	dec, err := zstd.NewReader(sourceReader{r}, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, false, fmt.Errorf("create zstd decoder: %w", err)
	}
	defer dec.Close()
	snap, err = diff.ReadSnapshot(dec)
	if err != nil {
		var se *sourceError
		if errors.As(err, &se) {
			return nil, false, se.err
		}
		return nil, true, err
	}
	return snap, false, nil
}
