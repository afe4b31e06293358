package pubsub

import (
	"bytes"
	"fmt"

	"github.com/sessiongate/sessiongate/history"
)

// liveHeader starts a history live envelope (history.EncodeLive).
var liveHeader = []byte("h1\n")

// DecodeAny decodes one payload of the bus channel: a JSON event
// ([Decode]), or a history live envelope (history.EncodeLive) around a
// JSON message event, which the history's append published atomically
// with storing it. An envelope's position (when history is on) becomes the
// event's Stream, Epoch and Offset; an envelope around anything but a
// message is [ErrMalformed]. Errors are those of Decode. It never panics.
func DecodeAny(b []byte) (Event, error) {
	if !bytes.HasPrefix(b, liveHeader) {
		return Decode(b)
	}
	if len(b) > MaxEventBytes+history.MaxStreamLen+128 {
		return Event{}, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, len(b), MaxEventBytes)
	}
	l, err := history.ParseLive(b)
	if err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	e, err := Decode(l.Data)
	if err != nil {
		return Event{}, err
	}
	if e.Kind != KindMessage {
		return Event{}, fmt.Errorf("%w: live envelope around a %s", ErrMalformed, e.Kind)
	}
	// Only the envelope says where the event is: a position inside the
	// JSON is not believed.
	e.Stream, e.Epoch, e.Offset = "", "", 0
	if l.Offset > 0 {
		e.Stream, e.Epoch, e.Offset = l.Stream, l.Epoch, l.Offset
	}
	return e, nil
}
