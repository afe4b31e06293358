package session

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/bidi"
	"golang.org/x/text/unicode/norm"
)

// MaxUserIDLen is the longest user id, in bytes (UTF-8), a store accepts.
const MaxUserIDLen = 128

// userIDPunct is the ASCII punctuation a user id may contain: every
// printable ASCII symbol except `"`, `\`, `<`, `>` and the backtick, which
// quote, escape or open markup in the HTML, JSON, shells and logs that user
// ids end up in, and which no common id scheme (e-mail addresses without
// quoted local parts, "auth0|…", URNs, LDAP DNs, paths) needs.
const userIDPunct = "!#$%&'()*+,-./:;=?@[]^_{|}~"

// UserIDError says why a user id is invalid. errors.Is(err, [ErrInvalidUser])
// holds for it.
type UserIDError struct {
	// Reason completes the sentence "user_id …", e.g. "must not be empty".
	Reason string
}

func (e *UserIDError) Error() string { return ErrInvalidUser.Error() + ": user_id " + e.Reason }

// Is makes a *UserIDError match [ErrInvalidUser].
func (e *UserIDError) Is(target error) bool { return target == ErrInvalidUser }

// ValidUserID reports whether id is an acceptable user id; see [CheckUserID]
// for the rule.
func ValidUserID(id string) bool { return CheckUserID(id) == nil }

// CheckUserID returns nil if id is an acceptable user id, or a *[UserIDError]
// saying which rule it breaks. It is the one definition of the user id
// alphabet (docs/PROTOCOL.md documents it for users); every store and the
// gateway apply it. A user id is:
//
//   - 1 to [MaxUserIDLen] bytes of valid UTF-8;
//   - one or more words separated by single ASCII spaces (no leading,
//     trailing or repeated space, so never whitespace only);
//   - made of ASCII letters and digits, the ASCII punctuation in
//     userIDPunct, and non-ASCII letters, combining marks and decimal digits
//     (the PRECIS IdentifierClass of RFC 8264): no control, format (Cf,
//     e.g. U+200B, U+202E), bidi control, other space or separator, symbol
//     (emoji) or non-ASCII punctuation character;
//   - in Unicode NFC, with no compatibility character (fullwidth forms,
//     ligatures, superscripts), checked with the PRECIS identifier class;
//   - of one writing direction: no left-to-right letters together with
//     right-to-left letters or Arabic-Indic digits, no European digits
//     together with Arabic-Indic ones (what the Bidi Rule of RFC 5893
//     guards against);
//   - no word starting with a combining mark, and not "." or ".." (URL
//     parsers resolve those as path segments, so such an id could not be
//     addressed as /api/v1/users/{user_id}/sessions).
//
// Case is preserved and significant: "Alice" and "alice" are two users. Two
// valid ids can still look alike across scripts (Latin "a", Cyrillic "а");
// an application that needs more must map ids before they reach the
// gateway. Safe for concurrent use; never panics.
func CheckUserID(id string) error {
	switch {
	case id == "":
		return &UserIDError{"must not be empty"}
	case len(id) > MaxUserIDLen:
		return &UserIDError{fmt.Sprintf("is %d bytes; the limit is %d", len(id), MaxUserIDLen)}
	case !utf8.ValidString(id):
		return &UserIDError{"is not valid UTF-8"}
	case id == "." || id == "..":
		return &UserIDError{`must not be "." or ".."`}
	case id[0] == ' ' || id[len(id)-1] == ' ':
		return &UserIDError{"must not start or end with a space"}
	case strings.Contains(id, "  "):
		return &UserIDError{"must not contain two spaces in a row"}
	}
	wordStart := true
	for _, r := range id {
		switch {
		case r == ' ':
			wordStart = true
			continue
		case r < utf8.RuneSelf:
			if !isASCIIAlnum(r) && !strings.ContainsRune(userIDPunct, r) {
				return &UserIDError{fmt.Sprintf("contains %s, which is not allowed", describeRune(r))}
			}
		case unicode.Is(unicode.Cf, r) || unicode.IsControl(r) || unicode.Is(unicode.Z, r):
			// Precis would refuse these too, but name them plainly: they
			// are the invisible and reordering characters this rule is for.
			return &UserIDError{fmt.Sprintf("contains %s, an invisible, control or bidi character", describeRune(r))}
		case wordStart && unicode.Is(unicode.M, r):
			return &UserIDError{fmt.Sprintf("contains %s, a combining mark with nothing to combine with", describeRune(r))}
		}
		wordStart = false
	}
	if !norm.NFC.IsNormalString(id) {
		return &UserIDError{"is not in Unicode NFC (compose accents: \"é\", not \"e\" + U+0301)"}
	}
	// The PRECIS IdentifierClass, with NFC as its only mapping: fullwidth
	// forms and other compatibility characters are refused, not folded.
	// It checks one word at a time, as RFC 8265 does for spaces.
	p := precis.NewIdentifier(precis.Norm(norm.NFC))
	for w := range strings.SplitSeq(id, " ") {
		if out, err := p.String(w); err != nil || out != w {
			return &UserIDError{"contains a character outside the allowed alphabet (letters, combining marks, decimal digits, the ASCII punctuation " + userIDPunct + "); symbols, emoji, non-ASCII punctuation and compatibility characters such as fullwidth letters are refused"}
		}
	}
	if reason := mixedDirection(id); reason != "" {
		return &UserIDError{reason}
	}
	return nil
}

// mixedDirection refuses what the Bidi Rule of RFC 5893 refuses and a
// display reorders confusingly: left-to-right letters together with
// right-to-left letters or Arabic-Indic digits, and European digits
// together with Arabic-Indic ones. (The full Bidi Rule is written for DNS
// labels; it would also refuse "josé." for ending in punctuation.)
func mixedDirection(id string) string {
	var ltr, rtl, en, an bool
	for _, r := range id {
		if r < utf8.RuneSelf && !isASCIIAlnum(r) {
			continue
		}
		p, _ := bidi.LookupRune(r)
		switch p.Class() {
		case bidi.L:
			ltr = true
		case bidi.R, bidi.AL:
			rtl = true
		case bidi.EN:
			en = true
		case bidi.AN:
			an, rtl = true, true
		}
	}
	switch {
	case ltr && rtl:
		return "mixes left-to-right and right-to-left letters or digits"
	case en && an:
		return "mixes European and Arabic-Indic digits"
	}
	return ""
}

func checkUserID(id string) error { return CheckUserID(id) }

func isASCIIAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// describeRune names r for an error message without echoing an invisible
// or reordering character itself.
func describeRune(r rune) string {
	if r >= 0x21 && r < 0x7f {
		return fmt.Sprintf("%q (U+%04X)", r, r)
	}
	return fmt.Sprintf("U+%04X", r)
}
