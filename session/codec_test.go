package session

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestNewCodecRejectsWeakSecret(t *testing.T) {
	tests := []struct {
		name   string
		secret []byte
		want   error
	}{
		{name: "nil", secret: nil, want: ErrWeakSecret},
		{name: "31 bytes", secret: []byte(strings.Repeat("s", 31)), want: ErrWeakSecret},
		{name: "32 bytes", secret: []byte(strings.Repeat("s", 32)), want: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewCodec(tc.secret)
			if !errors.Is(err, tc.want) || (err == nil) != (c != nil) {
				t.Fatalf("NewCodec = %v, %v; want %v", c, err, tc.want)
			}
		})
	}
}

func TestTokenRoundTrip(t *testing.T) {
	c := newTestCodec(t)
	seen := map[string]bool{}
	for range 100 {
		tok, handle, err := c.New()
		if err != nil {
			t.Fatal(err)
		}
		if len(tok) != tokenLen || !ValidHandle(handle) {
			t.Fatalf("New = %q (%d chars), %q", tok, len(tok), handle)
		}
		if seen[tok] || seen[handle] {
			t.Fatal("New repeated a token or handle")
		}
		seen[tok], seen[handle] = true, true
		got, err := c.Parse(tok)
		if err != nil || got != handle {
			t.Fatalf("Parse(New()) = %q, %v; want %q", got, err, handle)
		}
		if strings.Contains(handle, tok[:idB64Len]) {
			t.Fatal("handle contains the id")
		}
	}
}

func TestHandleAndTagAreDomainSeparated(t *testing.T) {
	c := newTestCodec(t)
	tok, handle, _ := c.New()
	tag, err := base64.RawURLEncoding.DecodeString(tok[idB64Len+1:])
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(handle, hexString(tag)) {
		t.Fatal("tag is a prefix of the handle: cookie and handle keys are not separated")
	}
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, x := range b {
		out = append(out, digits[x>>4], digits[x&15])
	}
	return string(out)
}

// flipChar replaces the character at i with another base64url character.
func flipChar(s string, i int) string {
	r := byte('A')
	if s[i] == 'A' {
		r = 'B'
	}
	return s[:i] + string(r) + s[i+1:]
}

func TestParseRejects(t *testing.T) {
	c := newTestCodec(t)
	tok, handle, _ := c.New()
	other, err := NewCodec([]byte(strings.Repeat("x", 40)))
	if err != nil {
		t.Fatal(err)
	}
	foreign, _, _ := other.New()
	id, tag := tok[:idB64Len], tok[idB64Len+1:]
	nonCanonical := id + "." + tag[:tagB64Len-1] + string(nextNonCanonical(tag[tagB64Len-1]))

	tests := []struct {
		name, token string
	}{
		{name: "empty", token: ""},
		{name: "garbage", token: "hello world"},
		{name: "id only", token: id},
		{name: "id and dot", token: id + "."},
		{name: "truncated tag", token: tok[:len(tok)-1]},
		{name: "truncated id", token: id[1:] + "." + tag},
		{name: "extra char", token: tok + "A"},
		{name: "no dot", token: id + "x" + tag},
		{name: "two dots", token: id + ".." + tag[1:]},
		{name: "padded", token: id + "=." + tag[:tagB64Len-1]},
		{name: "std base64 plus", token: "+" + id[1:] + "." + tag},
		{name: "std base64 slash", token: id + "." + "/" + tag[1:]},
		{name: "forged tag", token: flipChar(tok, idB64Len+1)},
		{name: "forged id", token: flipChar(tok, 0)},
		{name: "tag of another id", token: foreign[:idB64Len] + "." + tag},
		{name: "wrong secret", token: foreign},
		{name: "handle as token", token: handle},
		{name: "newline inside", token: id[:10] + "\n" + id[11:] + "." + tag},
		{name: "space", token: " " + tok[1:]},
		{name: "non-canonical tag", token: nonCanonical},
		{name: "unicode", token: strings.Repeat("é", tokenLen/2)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.token == tok {
				t.Fatal("test case equals the valid token")
			}
			h, err := c.Parse(tc.token)
			if !errors.Is(err, ErrInvalidToken) || h != "" {
				t.Fatalf("Parse(%q) = %q, %v; want ErrInvalidToken", tc.token, h, err)
			}
		})
	}
	if got, err := c.Parse(tok); err != nil || got != handle {
		t.Fatalf("valid token rejected: %v", err)
	}
}

// nextNonCanonical returns a base64url character that decodes to the same
// high bits as c but sets low bits that a 16-byte tag leaves unused (the
// last character of a 22-character part carries 2 data bits and 4 padding
// bits).
func nextNonCanonical(c byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c)
	return alphabet[i|1]
}

func TestValidHandle(t *testing.T) {
	good := strings.Repeat("0a", 32)
	tests := []struct {
		name string
		h    string
		want bool
	}{
		{name: "good", h: good, want: true},
		{name: "empty", h: "", want: false},
		{name: "short", h: good[1:], want: false},
		{name: "long", h: good + "0", want: false},
		{name: "upper", h: strings.ToUpper(good), want: false},
		{name: "non hex", h: "g" + good[1:], want: false},
		{name: "key injection", h: good[:60] + "*:u:", want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidHandle(tc.h); got != tc.want {
				t.Fatalf("ValidHandle(%q) = %v", tc.h, got)
			}
		})
	}
}
