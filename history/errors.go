package history

import "errors"

// Sentinel errors. Compare with [errors.Is]; returned errors wrap them with
// context.
var (
	// ErrInvalidStream means a stream name is empty, too long, not valid
	// UTF-8 or contains a control character.
	ErrInvalidStream = errors.New("history: invalid stream name")
	// ErrInvalidLimit means a read limit is not positive.
	ErrInvalidLimit = errors.New("history: invalid limit")
	// ErrMalformedLive means a published message is not a live envelope
	// written by [EncodeLive] (or by the Redis append script).
	ErrMalformedLive = errors.New("history: malformed live message")
	// ErrUnexpectedReply means Redis answered a script or read with a reply
	// of the wrong shape (another program wrote the keys, or a script bug).
	ErrUnexpectedReply = errors.New("history: unexpected reply from redis")
)
