package session

import (
	"errors"
	"fmt"
)

// Sentinel errors. Compare with [errors.Is]; most are wrapped with detail.
var (
	// ErrNotFound reports that a session does not exist (or no longer does).
	ErrNotFound = errors.New("session: not found")
	// ErrInvalidToken reports a cookie value or bearer token that is not a
	// well-formed token signed with this process's secret.
	ErrInvalidToken = errors.New("session: invalid token")
	// ErrInvalidHandle reports a string that is not a session handle.
	ErrInvalidHandle = errors.New("session: invalid handle")
	// ErrEnvelope reports an encrypted session blob that cannot be opened.
	ErrEnvelope = errors.New("session: envelope")
	// ErrWeakSecret reports a SESSION_SECRET shorter than 32 bytes.
	ErrWeakSecret = errors.New("session: secret must be at least 32 bytes")
	// ErrInvalidKey reports an encryption key that is not 32 bytes (64 hex
	// characters), or a key list that cannot be used.
	ErrInvalidKey = errors.New("session: invalid encryption key")
	// ErrInvalidUser reports a user id outside the user id alphabet (see
	// [CheckUserID]); the error is a *[UserIDError] saying which rule.
	ErrInvalidUser = errors.New("session: invalid user id")
	// ErrInvalidData reports session data that is not a JSON object, or is
	// larger than [MaxDataLen] bytes.
	ErrInvalidData = errors.New("session: invalid data")
	// ErrInvalidOptions reports [Options] that cannot work (e.g. negative
	// durations).
	ErrInvalidOptions = errors.New("session: invalid options")
)

// errExpiryLater is Update's answer to a session whose ExpiresAt moved later
// than the stored one: the absolute lifetime only ever shrinks.
var errExpiryLater = fmt.Errorf("%w: expires_at may not move later than the stored session's", ErrInvalidData)
