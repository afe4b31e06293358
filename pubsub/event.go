package pubsub

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Version is the event format version this build writes and accepts.
const Version = 1

// MaxEventBytes is the largest encoded event the bus publishes or accepts.
const MaxEventBytes = 1 << 20

// MaxRevokedHandles is the most handles one user.revoked event carries; a
// publisher announces more in several events.
const MaxRevokedHandles = 1000

// Kind names what an [Event] is about.
type Kind string

// The known event kinds.
const (
	// KindSessionRevoked: the session named by Event.Handle is revoked.
	KindSessionRevoked Kind = "session.revoked"
	// KindUserRevoked: sessions of Event.UserID are revoked: those named in
	// Event.Handles or, when it is empty (older publishers), every one.
	KindUserRevoked Kind = "user.revoked"
	// KindMessage: deliver Event.Name/Event.Data to the connections matching
	// Event.Target.
	KindMessage Kind = "message"
	// KindHeartbeat: Event.Instance is alive (published every few seconds).
	KindHeartbeat Kind = "instance.heartbeat"
	// KindDraining: Event.Instance is shutting down and closing connections.
	KindDraining Kind = "instance.draining"
)

// known reports whether k is a kind this build understands.
func (k Kind) known() bool {
	switch k {
	case KindSessionRevoked, KindUserRevoked, KindMessage, KindHeartbeat, KindDraining:
		return true
	}
	return false
}

// Target selects the connections a message event is for. Exactly one field
// is set.
type Target struct {
	// Handle selects the connections of one session (its public handle).
	Handle string `json:"handle,omitempty"`
	// UserID selects the connections of every session of one user.
	UserID string `json:"user_id,omitempty"`
	// All selects every connection.
	All bool `json:"all,omitempty"`
}

// count returns how many selectors are set.
func (t Target) count() int {
	n := 0
	if t.Handle != "" {
		n++
	}
	if t.UserID != "" {
		n++
	}
	if t.All {
		n++
	}
	return n
}

// InstanceInfo is what an instance says about itself in its heartbeats.
type InstanceInfo struct {
	ID             string    `json:"id"`
	Addr           string    `json:"addr"`
	Connections    int       `json:"connections"`
	Sessions       int       `json:"sessions"`
	RedisLatencyMS float64   `json:"redis_latency_ms"`
	Draining       bool      `json:"draining"`
	StartedAt      time.Time `json:"started_at"`
}

// Event is the one message type carried by the bus. Which fields are
// required depends on Kind; [Decode] and [Event.Encode] check them.
type Event struct {
	// V is the format version; Encode sets it to [Version].
	V int `json:"v"`
	// Kind says what the event is about.
	Kind Kind `json:"kind"`
	// ID identifies a message event (see [NewEventID]).
	ID string `json:"id,omitempty"`
	// Origin is the id of the publishing instance.
	Origin string `json:"origin"`
	// Time is when the event was published.
	Time time.Time `json:"time"`
	// Handle is the revoked session's handle (session.revoked).
	Handle string `json:"handle,omitempty"`
	// UserID is the revoked user (user.revoked).
	UserID string `json:"user_id,omitempty"`
	// Handles are the sessions of UserID that the revocation destroyed
	// (user.revoked), at most [MaxRevokedHandles]. Sessions of the user not
	// listed (created concurrently) are not revoked. Empty means every
	// session of the user (events from older instances).
	Handles []string `json:"handles,omitempty"`
	// Target selects the connections a message is for (message).
	Target *Target `json:"target,omitempty"`
	// Name is the application's event name (message).
	Name string `json:"event,omitempty"`
	// Data is the application's payload (message); any JSON value.
	Data json.RawMessage `json:"data,omitempty"`
	// Instance describes the publishing instance (heartbeat, draining).
	Instance *InstanceInfo `json:"instance,omitempty"`
	// Stream, Epoch and Offset are where a message is in its history
	// stream (see package history): set on a message that came as a live
	// envelope ([DecodeAny]) with a position, zero otherwise.
	Stream string `json:"stream,omitempty"`
	Epoch  string `json:"epoch,omitempty"`
	Offset uint64 `json:"offset,omitempty"`
}

// Encode validates e and returns its wire form. It sets V to [Version] and a
// zero Time to now. The errors are those of [Decode].
func (e Event) Encode() ([]byte, error) {
	e.V = Version
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if err := e.validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(b) > MaxEventBytes {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, len(b), MaxEventBytes)
	}
	return b, nil
}

// Decode parses and validates one event from untrusted bytes. It returns
// [ErrTooLarge] for more than [MaxEventBytes], [ErrMalformed] for bad JSON or
// a missing field, [ErrVersion] and [ErrUnknownKind]. It never panics.
func Decode(b []byte) (Event, error) {
	if len(b) > MaxEventBytes {
		return Event{}, fmt.Errorf("%w: %d bytes (max %d)", ErrTooLarge, len(b), MaxEventBytes)
	}
	var e Event
	if err := json.Unmarshal(b, &e); err != nil {
		return Event{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := e.validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// validate checks the version, the kind and the fields the kind requires.
func (e *Event) validate() error {
	if e.V != Version {
		return fmt.Errorf("%w: %d", ErrVersion, e.V)
	}
	if e.Kind == "" {
		return fmt.Errorf("%w: no kind", ErrMalformed)
	}
	if !e.Kind.known() {
		return fmt.Errorf("%w: %.64q", ErrUnknownKind, string(e.Kind))
	}
	if e.Origin == "" {
		return fmt.Errorf("%w: %s without origin", ErrMalformed, e.Kind)
	}
	if (e.Stream != "" || e.Epoch != "" || e.Offset != 0) &&
		(e.Kind != KindMessage || e.Stream == "" || e.Epoch == "" || e.Offset == 0) {
		return fmt.Errorf("%w: a position needs a message with stream, epoch and offset", ErrMalformed)
	}
	switch e.Kind {
	case KindSessionRevoked:
		if e.Handle == "" {
			return fmt.Errorf("%w: %s without handle", ErrMalformed, e.Kind)
		}
	case KindUserRevoked:
		if e.UserID == "" {
			return fmt.Errorf("%w: %s without user_id", ErrMalformed, e.Kind)
		}
		if len(e.Handles) > MaxRevokedHandles {
			return fmt.Errorf("%w: %s with %d handles (max %d)", ErrMalformed, e.Kind, len(e.Handles), MaxRevokedHandles)
		}
		for _, h := range e.Handles {
			if h == "" {
				return fmt.Errorf("%w: %s with an empty handle", ErrMalformed, e.Kind)
			}
		}
	case KindMessage:
		if e.ID == "" {
			return fmt.Errorf("%w: message without id", ErrMalformed)
		}
		if e.Name == "" {
			return fmt.Errorf("%w: message without event name", ErrMalformed)
		}
		if e.Target == nil || e.Target.count() != 1 {
			return fmt.Errorf("%w: message target must set exactly one of handle, user_id, all", ErrMalformed)
		}
	case KindHeartbeat, KindDraining:
		if e.Instance == nil || e.Instance.ID == "" {
			return fmt.Errorf("%w: %s without instance id", ErrMalformed, e.Kind)
		}
	}
	return nil
}

// NewEventID returns a random event id: 12 hex digits of Unix milliseconds
// then 16 random hex digits, so ids sort roughly by creation time. Safe for
// concurrent use.
func NewEventID() string {
	var b [14]byte
	ms := uint64(time.Now().UnixMilli())
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], ms)
	copy(b[:6], ts[2:])
	_, _ = rand.Read(b[6:]) // crypto/rand.Read never returns an error (Go 1.24+).
	return hex.EncodeToString(b[:])
}
