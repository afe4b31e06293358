package session

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// MaxDataLen is the largest session data, in bytes (compacted JSON), a
// store accepts.
const MaxDataLen = 64 << 10

// Session is one session as the application sees it. Handle is its public
// name; everything else is the encrypted payload. A Session is a value: the
// stores return copies the caller owns.
type Session struct {
	// Handle is the session's public name (see [Codec]); it is not part of
	// the stored payload.
	Handle string `json:"-"`
	// UserID is the authenticated user.
	UserID string `json:"user_id"`
	// Data is application data: a JSON object, or empty.
	Data json.RawMessage `json:"data,omitempty"`
	// CreatedAt is when the session was created.
	CreatedAt time.Time `json:"created_at"`
	// AuthAt is when the user last authenticated in this session.
	AuthAt time.Time `json:"auth_at"`
	// ExpiresAt is the absolute expiry (CreatedAt + [Options.Lifetime]),
	// enforced from the payload whatever the idle TTL says.
	ExpiresAt time.Time `json:"expires_at"`
}

// Expired reports whether s is past its absolute expiry at now. A session
// without an expiry counts as expired (fail closed).
func (s Session) Expired(now time.Time) bool {
	return s.ExpiresAt.IsZero() || !now.Before(s.ExpiresAt)
}

// Options configure a store. Zero means default.
type Options struct {
	// Prefix is prepended to every Redis key. Defaults to "sessiongate:".
	Prefix string
	// IdleTTL is how long a session lives without activity: the Redis key
	// TTL, extended on activity (rolling). Defaults to 24h.
	IdleTTL time.Duration
	// Lifetime is the absolute lifetime of a session from its creation,
	// whatever its activity. Defaults to 7*24h.
	Lifetime time.Duration
	// TouchInterval is the minimum time between two idle-TTL extensions of
	// one session by this process; loads in between are plain reads.
	// Defaults to 1m. It must be shorter than IdleTTL.
	TouchInterval time.Duration
	// Now is the clock. Defaults to time.Now. Redis TTLs always run on the
	// Redis server's clock; Now drives absolute expiry, the touch throttle
	// and every MemoryStore deadline.
	Now func() time.Time
}

// Defaults for the zero fields of [Options].
const (
	DefaultPrefix        = "sessiongate:"
	DefaultIdleTTL       = 24 * time.Hour
	DefaultLifetime      = 7 * 24 * time.Hour
	DefaultTouchInterval = time.Minute
)

// Validate reports options that no store can work with (negative
// durations, TouchInterval not shorter than IdleTTL), wrapping
// [ErrInvalidOptions]. [NewRedisStore] returns the same error.
func (o Options) Validate() error {
	_, err := o.withDefaults()
	return err
}

// withDefaults fills zero fields and rejects options that cannot work.
func (o Options) withDefaults() (Options, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.IdleTTL == 0 {
		o.IdleTTL = DefaultIdleTTL
	}
	if o.Lifetime == 0 {
		o.Lifetime = DefaultLifetime
	}
	if o.TouchInterval == 0 {
		o.TouchInterval = DefaultTouchInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.IdleTTL < time.Millisecond:
		return o, fmt.Errorf("%w: IdleTTL %v must be at least 1ms", ErrInvalidOptions, o.IdleTTL)
	case o.Lifetime < time.Millisecond:
		return o, fmt.Errorf("%w: Lifetime %v must be at least 1ms", ErrInvalidOptions, o.Lifetime)
	case o.TouchInterval < 0:
		return o, fmt.Errorf("%w: TouchInterval %v must not be negative", ErrInvalidOptions, o.TouchInterval)
	case o.TouchInterval >= o.IdleTTL:
		return o, fmt.Errorf("%w: TouchInterval %v must be shorter than IdleTTL %v, or active sessions idle out", ErrInvalidOptions, o.TouchInterval, o.IdleTTL)
	}
	return o, nil
}

// normalizeData returns a compacted private copy of data, nil for empty or
// JSON null, or ErrInvalidData if data is not a JSON object.
func normalizeData(data json.RawMessage) (json.RawMessage, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return nil, nil
	}
	if trimmed[0] != '{' {
		return nil, fmt.Errorf("%w: must be a JSON object", ErrInvalidData)
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, trimmed); err != nil {
		return nil, fmt.Errorf("%w: not valid JSON", ErrInvalidData)
	}
	if buf.Len() > MaxDataLen {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidData, buf.Len(), MaxDataLen)
	}
	return json.RawMessage(buf.Bytes()), nil
}

// newSession builds the payload of a fresh session at now.
func newSession(handle, userID string, data json.RawMessage, now time.Time, lifetime time.Duration) Session {
	now = now.Round(0).UTC()
	return Session{
		Handle:    handle,
		UserID:    userID,
		Data:      data,
		CreatedAt: now,
		AuthAt:    now,
		ExpiresAt: now.Add(lifetime),
	}
}

// checkUpdate validates a session passed to Update and returns it with
// normalized data.
func checkUpdate(s Session) (Session, error) {
	if !ValidHandle(s.Handle) {
		return s, ErrInvalidHandle
	}
	if err := checkUserID(s.UserID); err != nil {
		return s, err
	}
	if s.ExpiresAt.IsZero() {
		// A hand-built Session would otherwise count as expired and be
		// destroyed: refuse it instead.
		return s, fmt.Errorf("%w: expires_at is zero (pass a Session read by Get or Load)", ErrInvalidData)
	}
	d, err := normalizeData(s.Data)
	if err != nil {
		return s, err
	}
	s.Data = d
	s.CreatedAt = s.CreatedAt.Round(0).UTC()
	s.AuthAt = s.AuthAt.Round(0).UTC()
	s.ExpiresAt = s.ExpiresAt.Round(0).UTC()
	return s, nil
}

// idleDeadline is when a session touched at now idles out: now + idle, but
// never past its absolute expiry.
func idleDeadline(now, expiresAt time.Time, idle time.Duration) time.Time {
	d := now.Add(idle)
	if expiresAt.Before(d) {
		return expiresAt
	}
	return d
}

// cloneSession returns s with its own copy of Data.
func cloneSession(s Session) Session {
	if s.Data != nil {
		s.Data = append(json.RawMessage(nil), s.Data...)
	}
	return s
}
