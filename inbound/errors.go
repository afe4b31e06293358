package inbound

import "errors"

var (
	// ErrFull is returned by Enqueue when the sender's partition is at its
	// length cap: backpressure, the client is told "queue_full".
	ErrFull = errors.New("inbound: queue full")
	// ErrBadID means a message or dead-letter id is not one the queue
	// gives out.
	ErrBadID = errors.New("inbound: bad message id")
	// ErrNotHeld means the consumer no longer holds the message: it was
	// acknowledged, or claimed by another consumer after its visibility
	// timeout. The caller must stop working on it.
	ErrNotHeld = errors.New("inbound: message not held by this consumer")
	// ErrTooManyDeliveries is the error recorded on a message that Read
	// moved to the dead letters because it was delivered MaxDeliveries
	// times without an acknowledgement or a recorded failure (its
	// consumers crashed or hung on it).
	ErrTooManyDeliveries = errors.New("inbound: delivered too many times without an ack")
)

// errMalformed is the dead-letter cause of a stream entry that is not a
// message (written by something else than Enqueue).
var errMalformed = errors.New("inbound: malformed entry")

var (
	// ErrNoHandler is the dead-letter cause of a message whose event has
	// no handler in a Worker without a Default handler.
	ErrNoHandler = errors.New("inbound: no handler for the event")
	// ErrStopTimeout is returned by Worker.Run when handlers were still
	// running StopTimeout after its context ended; their messages stay
	// pending and are redelivered after the visibility timeout.
	ErrStopTimeout = errors.New("inbound: handlers still running at the stop timeout")
)

// ErrBadReply means a reply cannot be sent as asked: no sender, a bad
// event name, data that is not a JSON object, or too large.
var ErrBadReply = errors.New("inbound: bad reply")
