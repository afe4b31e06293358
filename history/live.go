package history

import (
	"bytes"
	"fmt"
	"strconv"
)

// liveMagic starts every live envelope; it names its version.
const liveMagic = "h1\n"

// Live is one event as published on the live channel by Append: the event
// and where it is in its stream, so a subscriber can drop what a replay
// already delivered and notice an epoch change.
type Live struct {
	Stream string
	Position
	Data []byte
}

// EncodeLive returns the live envelope of an event: the lines "h1",
// stream, epoch and offset (decimal), each ended by "\n", then the data.
// The Redis append script builds the same bytes. Safe for concurrent use.
func EncodeLive(stream string, pos Position, data []byte) []byte {
	b := make([]byte, 0, len(liveMagic)+len(stream)+len(pos.Epoch)+24+len(data))
	b = append(b, liveMagic...)
	b = append(b, stream...)
	b = append(b, '\n')
	b = append(b, pos.Epoch...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, pos.Offset, 10)
	b = append(b, '\n')
	return append(b, data...)
}

// ParseLive parses a live envelope. Its Data aliases msg. An error wraps
// [ErrMalformedLive]. Safe for concurrent use; never panics.
func ParseLive(msg []byte) (Live, error) {
	rest, ok := bytes.CutPrefix(msg, []byte(liveMagic))
	if !ok {
		return Live{}, fmt.Errorf("%w: no %q header", ErrMalformedLive, liveMagic[:2])
	}
	var f [3][]byte
	for i := range f {
		var found bool
		f[i], rest, found = bytes.Cut(rest, []byte{'\n'})
		if !found {
			return Live{}, fmt.Errorf("%w: truncated header", ErrMalformedLive)
		}
	}
	l := Live{Stream: string(f[0]), Data: rest}
	if err := checkStream(l.Stream); err != nil {
		return Live{}, fmt.Errorf("%w: %w", ErrMalformedLive, err)
	}
	if !validEpoch(f[1]) {
		return Live{}, fmt.Errorf("%w: bad epoch", ErrMalformedLive)
	}
	l.Epoch = string(f[1])
	off, err := strconv.ParseUint(string(f[2]), 10, 64)
	if err != nil || (len(f[2]) > 1 && f[2][0] == '0') {
		return Live{}, fmt.Errorf("%w: bad offset", ErrMalformedLive)
	}
	if (off == 0) != (l.Epoch == "") {
		return Live{}, fmt.Errorf("%w: offset and epoch disagree", ErrMalformedLive)
	}
	l.Offset = off
	return l, nil
}

// validEpoch reports whether e is empty (history off) or 1 to 64 lowercase
// hex digits.
func validEpoch(e []byte) bool {
	if len(e) > 64 {
		return false
	}
	for _, c := range e {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
