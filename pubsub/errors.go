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

// Causes of a lost subscription, in logs and OnGap reasons.
var (
	errUnresponsive  = errors.New("pubsub: no reply from redis")
	errNotConfirmed  = errors.New("pubsub: subscribe neither confirmed nor refused")
	errPingFailed    = errors.New("pubsub: ping failed")
	errRedialled     = errors.New("pubsub: client re-subscribed on a new connection")
	errUnsubscribed  = errors.New("pubsub: unsubscribed by the server")
	errNotDelivering = errors.New("pubsub: own heartbeat does not come back")
)
