package gateway

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
)

// adminIDBytes is the length of an admin session id and of a CSRF token.
const adminIDBytes = 32

// adminIDChars is the length of their unpadded base64url form.
var adminIDChars = base64.RawURLEncoding.EncodedLen(adminIDBytes)

// newAdminSecret returns 32 random bytes and their base64url form.
func newAdminSecret() ([]byte, string) {
	b := make([]byte, adminIDBytes)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (it crashes the program instead)
	return b, base64.RawURLEncoding.EncodeToString(b)
}

// parseAdminID decodes an admin cookie's value: exactly 43 characters of
// unpadded base64url encoding 32 bytes. Anything else is no session.
func parseAdminID(v string) ([]byte, bool) {
	if len(v) != adminIDChars {
		return nil, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil || len(b) != adminIDBytes {
		return nil, false
	}
	return b, true
}

// csrfMatch compares a request's X-CSRF-Token with the session's token in
// constant time; an empty or mis-sized header never matches.
func csrfMatch(header, want string) bool {
	if len(header) != adminIDChars || len(want) != adminIDChars {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(header), []byte(want)) == 1
}
