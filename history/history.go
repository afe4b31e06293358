package history

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Broadcast is the stream of events published to every connection.
const Broadcast = "all"

// MaxStreamLen is the longest stream name, in bytes: "user:" and the
// longest user id the session store accepts, with room to spare.
const MaxStreamLen = 256

// UserStream is the stream of the events published to a user or to one of
// the user's sessions.
func UserStream(userID string) string { return "user:" + userID }

// Position is where an event is in its stream. The zero Position (no epoch)
// is before any stream existed; it is never recoverable.
type Position struct {
	// Epoch identifies one history of the stream; it changes when the
	// history is lost.
	Epoch string
	// Offset is the event's number in its epoch, from 1. A stream's current
	// Position has the offset of its last event (0 before the first).
	Offset uint64
}

// Event is one event of a stream's history.
type Event struct {
	// Offset is the event's offset in the epoch of the [Result] it came in.
	Offset uint64
	// Data is the event as appended: opaque bytes.
	Data []byte
}

// Result is what Since found. A Result may be shared by several callers
// (see [Coalescing]): its Events and their Data are read-only.
type Result struct {
	// Recovered is true when Events are exactly the events after the
	// position asked for, in order, with no gap, up to the limit. It is
	// false when the position is of another epoch, older than the oldest
	// event kept, ahead of the last offset, or the stream is gone: then
	// Events is empty and the reader must resynchronise from Current.
	Recovered bool
	// Events are the events after the position, oldest first, at most the
	// limit asked for.
	Events []Event
	// Current is the stream's position when it was read: its epoch and last
	// offset. Its Epoch is empty when the stream does not exist (call
	// Position to create it).
	Current Position
}

// Complete reports whether r is recovered and holds every event up to
// Current: false means the limit cut it short (read again from the last
// event's offset) or it was not recovered.
func (r Result) Complete(from Position) bool {
	if !r.Recovered {
		return false
	}
	last := from.Offset
	if n := len(r.Events); n > 0 {
		last = r.Events[n-1].Offset
	}
	return last == r.Current.Offset
}

// checkStream returns an error wrapping [ErrInvalidStream] unless name is a
// valid stream name: 1 to [MaxStreamLen] bytes of UTF-8 with no control
// character (the live envelope is line-based).
func checkStream(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidStream)
	case len(name) > MaxStreamLen:
		return fmt.Errorf("%w: %d bytes; the limit is %d", ErrInvalidStream, len(name), MaxStreamLen)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidStream)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: contains control character U+%04X", ErrInvalidStream, r)
		}
	}
	return nil
}

func checkLimit(limit int) error {
	if limit <= 0 {
		return fmt.Errorf("%w: %d", ErrInvalidLimit, limit)
	}
	return nil
}

// newEpoch returns a fresh random epoch: 16 lowercase hex digits (64 bits
// from crypto/rand, so two histories of one stream never share one).
func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand.Read panics rather)
	return hex.EncodeToString(b[:])
}

// recover decides a read: given the position asked for, the stream's
// current position and the events kept after pos.Offset (oldest first, at
// most the limit), it returns the Result both stores return.
func recoverFrom(pos, cur Position, kept []Event) Result {
	res := Result{Current: cur}
	switch {
	case cur.Epoch == "" || pos.Epoch != cur.Epoch || pos.Offset > cur.Offset:
		return res // lost, other epoch, or a future (forged) offset
	case pos.Offset == cur.Offset:
		res.Recovered = true
		return res
	}
	// The events must start right after pos and follow each other: a
	// trimmed (or evicted) history starts later.
	for i, e := range kept {
		if e.Offset != pos.Offset+uint64(i)+1 || e.Offset > cur.Offset {
			return res
		}
	}
	if len(kept) == 0 {
		return res
	}
	res.Recovered, res.Events = true, kept
	return res
}
