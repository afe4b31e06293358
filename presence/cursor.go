package presence

import (
	"encoding/base64"
	"fmt"
	"unicode/utf8"
)

// maxCursorUser bounds the user id a cursor may carry (user ids are far
// shorter; this only bounds the work a hostile cursor causes).
const maxCursorUser = 1024

// EncodeCursor is the opaque page cursor that continues after user.
func EncodeCursor(user string) string {
	if user == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(user))
}

// DecodeCursor returns the user id a cursor continues after ("" for the
// empty cursor), or an error wrapping [ErrBadCursor]. It never panics on
// untrusted input.
func DecodeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	if len(c) > base64.RawURLEncoding.EncodedLen(maxCursorUser) {
		return "", fmt.Errorf("%w: too long", ErrBadCursor)
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil || len(b) == 0 || !utf8.Valid(b) {
		return "", fmt.Errorf("%w: not a cursor this API returned", ErrBadCursor)
	}
	return string(b), nil
}
