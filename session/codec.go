package session

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"sync"
)

const (
	// idLen is the length of a session id in bytes.
	idLen = 32
	// tagLen is the length of a token's HMAC tag in bytes (truncated SHA-256).
	tagLen = 16
	// MinSecretLen is the shortest SESSION_SECRET [NewCodec] accepts.
	MinSecretLen = 32
	// HandleLen is the length of a handle: hex of a SHA-256 HMAC.
	HandleLen = 2 * sha256.Size
)

var (
	// b64 is strict so that one id has exactly one token spelling.
	b64 = base64.RawURLEncoding.Strict()
	// Lengths of the two base64url parts of a token.
	idB64Len  = base64.RawURLEncoding.EncodedLen(idLen)
	tagB64Len = base64.RawURLEncoding.EncodedLen(tagLen)
	// tokenLen is the one length a well-formed token has.
	tokenLen = idB64Len + 1 + tagB64Len
)

// Domain-separation labels: the cookie tag and the handle are HMACs of the
// same id under keys derived from one secret with different labels, so one
// can never be mistaken for (or computed from) the other.
const (
	cookieLabel = "sessiongate cookie v1"
	handleLabel = "sessiongate handle v1"
)

// Codec mints session tokens and turns them into handles. It holds keys
// derived from SESSION_SECRET, never the secret itself. A Codec is immutable
// and safe for concurrent use.
type Codec struct {
	cookieMACs macPool
	handleMACs macPool
}

// macPool reuses keyed HMAC states: hmac.New costs several allocations and
// two hash blocks, Reset costs neither.
type macPool struct{ p sync.Pool }

func newMACPool(key []byte) macPool {
	k := append([]byte(nil), key...)
	return macPool{p: sync.Pool{New: func() any { return hmac.New(sha256.New, k) }}}
}

// sum appends HMAC(key, msg) to dst.
func (m *macPool) sum(dst, msg []byte) []byte {
	h := m.p.Get().(hash.Hash)
	h.Reset()
	h.Write(msg)
	dst = h.Sum(dst)
	m.p.Put(h)
	return dst
}

// NewCodec derives the cookie and handle keys from secret. It returns
// [ErrWeakSecret] if secret is shorter than [MinSecretLen] bytes. The caller
// keeps ownership of secret; the Codec copies nothing from it but the
// derived keys.
func NewCodec(secret []byte) (*Codec, error) {
	if len(secret) < MinSecretLen {
		return nil, fmt.Errorf("%w (got %d bytes)", ErrWeakSecret, len(secret))
	}
	return &Codec{
		cookieMACs: newMACPool(mac(secret, []byte(cookieLabel))),
		handleMACs: newMACPool(mac(secret, []byte(handleLabel))),
	}, nil
}

// New mints a fresh session: a 32-byte id from crypto/rand, returned only
// inside token (the cookie value), and the session's public handle.
func (c *Codec) New() (token, handle string, err error) {
	var id [idLen]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", "", fmt.Errorf("session: random id: %w", err)
	}
	var sum [sha256.Size]byte
	tag := c.cookieMACs.sum(sum[:0], id[:])[:tagLen]
	buf := make([]byte, tokenLen)
	b64.Encode(buf, id[:])
	buf[idB64Len] = '.'
	b64.Encode(buf[idB64Len+1:], tag)
	return string(buf), c.handle(id[:]), nil
}

// Parse checks token's tag in constant time and returns the session's
// handle. It does no I/O: a forged, truncated or foreign token costs no
// Redis round trip. Any malformed token yields [ErrInvalidToken] without
// detail, so the error is safe to return to a client.
func (c *Codec) Parse(token string) (handle string, err error) {
	if len(token) != tokenLen || token[idB64Len] != '.' {
		return "", ErrInvalidToken
	}
	var id [idLen]byte
	var tag [tagLen]byte
	if n, err := b64.Decode(id[:], []byte(token[:idB64Len])); err != nil || n != idLen {
		return "", ErrInvalidToken
	}
	if n, err := b64.Decode(tag[:], []byte(token[idB64Len+1:])); err != nil || n != tagLen {
		return "", ErrInvalidToken
	}
	var sum [sha256.Size]byte
	want := c.cookieMACs.sum(sum[:0], id[:])[:tagLen]
	if !hmac.Equal(want, tag[:]) {
		return "", ErrInvalidToken
	}
	return c.handle(id[:]), nil
}

func (c *Codec) handle(id []byte) string {
	var sum [sha256.Size]byte
	return hex.EncodeToString(c.handleMACs.sum(sum[:0], id))
}

// ValidHandle reports whether h looks like a handle: 64 lowercase hex
// characters. Use it to validate handles from API input before they reach a
// Redis key.
func ValidHandle(h string) bool {
	if len(h) != HandleLen {
		return false
	}
	for i := 0; i < len(h); i++ {
		b := h[i]
		if (b < '0' || b > '9') && (b < 'a' || b > 'f') {
			return false
		}
	}
	return true
}

func mac(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}
