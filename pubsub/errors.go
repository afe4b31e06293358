package pubsub

import "errors"

// Sentinel errors. Compare with [errors.Is]; returned errors wrap them with
// context.
var (
	// ErrMalformed means an event is not valid JSON, or lacks a field its kind
	// requires (a message needs exactly one target).
	ErrMalformed = errors.New("pubsub: malformed event")
	// ErrVersion means an event carries a version this build does not speak.
	ErrVersion = errors.New("pubsub: unsupported event version")
	// ErrUnknownKind means an event's kind is not one of the known kinds.
	ErrUnknownKind = errors.New("pubsub: unknown event kind")
	// ErrTooLarge means an encoded event exceeds [MaxEventBytes].
	ErrTooLarge = errors.New("pubsub: event too large")
	// ErrAlreadyRunning means Run was called on a bus that is already running.
	ErrAlreadyRunning = errors.New("pubsub: bus already running")
)
