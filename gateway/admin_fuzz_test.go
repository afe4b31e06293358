package gateway

import (
	"encoding/base64"
	"testing"
)

// FuzzAdminCookieAndCSRF: the admin cookie's value and the X-CSRF-Token
// header are untrusted input. Parsing never panics, accepts only the
// canonical encoding of 32 bytes (so one session has one cookie value), and
// a CSRF header matches only the exact token.
func FuzzAdminCookieAndCSRF(f *testing.F) {
	_, good := newAdminSecret()
	for _, s := range []string{"", good, good + "=", good[:42], good[:42] + "-", good[:42] + "_", "A", "\x00", good[:42] + "\xff"} {
		f.Add(s, good)
	}
	f.Fuzz(func(t *testing.T, v, token string) {
		id, ok := parseAdminID(v)
		if ok {
			if len(id) != adminIDBytes || base64.RawURLEncoding.EncodeToString(id) != v {
				t.Fatalf("parseAdminID(%q) accepted a non-canonical value", v)
			}
			if len(adminStoreKey(id)) != 64 {
				t.Fatal("store key is not 64 hex characters")
			}
		}
		if csrfMatch(v, token) != (v == token && len(v) == adminIDChars) {
			t.Fatalf("csrfMatch(%q, %q) = %v", v, token, csrfMatch(v, token))
		}
	})
}
