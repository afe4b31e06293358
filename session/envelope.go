package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
)

const (
	// envelopeVersion is the first byte of every blob this package seals.
	envelopeVersion = 2
	// envelopeV1 blobs (no expiry in the header) are still opened, so
	// sessions sealed before version 2 stay valid until they end.
	envelopeV1 = 1
	// KeyLen is the length of an encryption key in bytes (AES-256).
	KeyLen      = 32
	keyIDLen    = 4
	expiryLen   = 8
	nonceLen    = 12
	headerLen   = 1 + keyIDLen + expiryLen
	v1HeaderLen = 1 + keyIDLen
	gcmTagLen   = 16
	// minBlobLen is the shortest blob that can possibly open (empty plaintext).
	minBlobLen   = headerLen + nonceLen + gcmTagLen
	minV1BlobLen = v1HeaderLen + nonceLen + gcmTagLen
)

// Keyring encrypts and decrypts session envelopes with AES-256-GCM. The
// first key seals; every key opens, found by its key id (the first 4 bytes
// of SHA-256(key)), so the order of old keys never matters. A Keyring is
// immutable and safe for concurrent use.
//
// A blob is version(1)=2 | keyID(4) | expiry(8) | nonce(12) | ciphertext+tag,
// and its associated data is the header (version | keyID | expiry) followed
// by the Redis key, so a blob copied under another Redis key, or with its
// expiry changed, fails to open. expiry is the session's absolute expiry in
// Unix milliseconds, big-endian, in clear: Redis scripts read it to clamp
// every TTL they set to the session's lifetime without decrypting. Version 1
// blobs (version | keyID | nonce | ciphertext, no expiry) still open.
type Keyring struct {
	primary keyEntry
	byID    map[[keyIDLen]byte]cipher.AEAD
}

type keyEntry struct {
	id   [keyIDLen]byte
	aead cipher.AEAD
}

// ParseKeys parses SESSION_ENCRYPTION_KEY: one or more comma-separated keys
// of 64 hex characters each (spaces around a key are ignored). Errors name
// the key by position and never echo key material.
func ParseKeys(csv string) ([][]byte, error) {
	if strings.TrimSpace(csv) == "" {
		return nil, fmt.Errorf("%w: no key given (want 64 hex characters, comma-separated to rotate)", ErrInvalidKey)
	}
	parts := strings.Split(csv, ",")
	keys := make([][]byte, 0, len(parts))
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if len(p) != 2*KeyLen {
			return nil, fmt.Errorf("%w: key %d: must be 64 hex characters (32 bytes); got %d characters", ErrInvalidKey, i+1, len(p))
		}
		k, err := hex.DecodeString(p)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: must be 64 hex characters (32 bytes); it contains a non-hex character", ErrInvalidKey, i+1)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// NewKeyring builds a Keyring. keys[0] seals; all keys open. Every key must
// be [KeyLen] bytes and keys must be distinct. The Keyring copies nothing it
// does not need; the caller keeps ownership of keys.
func NewKeyring(keys [][]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key given", ErrInvalidKey)
	}
	kr := &Keyring{byID: make(map[[keyIDLen]byte]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if len(k) != KeyLen {
			return nil, fmt.Errorf("%w: key %d: must be 32 bytes; got %d", ErrInvalidKey, i+1, len(k))
		}
		id := KeyID(k)
		if _, dup := kr.byID[id]; dup {
			return nil, fmt.Errorf("%w: key %d: same key id %x as an earlier key (duplicate key?)", ErrInvalidKey, i+1, id)
		}
		block, err := aes.NewCipher(k)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrInvalidKey, i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrInvalidKey, i+1, err)
		}
		kr.byID[id] = aead
		if i == 0 {
			kr.primary = keyEntry{id: id, aead: aead}
		}
	}
	return kr, nil
}

// KeyID is the public identifier of an encryption key: the first 4 bytes of
// its SHA-256. It is safe to log.
func KeyID(key []byte) [4]byte {
	sum := sha256.Sum256(key)
	var id [keyIDLen]byte
	copy(id[:], sum[:keyIDLen])
	return id
}

// Seal encrypts plaintext for storage under redisKey with the primary key
// and a fresh random nonce, recording expiresAt (truncated to the
// millisecond) in the authenticated header. It returns a new slice.
func (k *Keyring) Seal(redisKey string, expiresAt time.Time, plaintext []byte) ([]byte, error) {
	blob := make([]byte, headerLen+nonceLen, headerLen+nonceLen+len(plaintext)+gcmTagLen)
	blob[0] = envelopeVersion
	copy(blob[1:1+keyIDLen], k.primary.id[:])
	binary.BigEndian.PutUint64(blob[1+keyIDLen:headerLen], uint64(max(expiresAt.UnixMilli(), 0)))
	nonce := blob[headerLen : headerLen+nonceLen]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("session: envelope nonce: %w", err)
	}
	return k.primary.aead.Seal(blob, nonce, plaintext, aad(blob[:headerLen], redisKey)), nil
}

// Open authenticates and decrypts a blob stored under redisKey. Every
// failure wraps [ErrEnvelope] with its reason (short, version, unknown key
// id, auth failed); none carries key material. It returns a new slice and
// never retains blob.
func (k *Keyring) Open(redisKey string, blob []byte) ([]byte, error) {
	hlen, minLen := headerLen, minBlobLen
	if len(blob) > 0 && blob[0] == envelopeV1 {
		hlen, minLen = v1HeaderLen, minV1BlobLen
	}
	if len(blob) < minLen {
		return nil, fmt.Errorf("%w: short blob (%d bytes, need at least %d)", ErrEnvelope, len(blob), minLen)
	}
	if blob[0] != envelopeVersion && blob[0] != envelopeV1 {
		return nil, fmt.Errorf("%w: unsupported version %d (want %d or %d)", ErrEnvelope, blob[0], envelopeVersion, envelopeV1)
	}
	var id [keyIDLen]byte
	copy(id[:], blob[1:1+keyIDLen])
	aead, ok := k.byID[id]
	if !ok {
		return nil, fmt.Errorf("%w: unknown key id %x: sealed with a key that is not in the keyring (was it rotated out?)", ErrEnvelope, id)
	}
	nonce := blob[hlen : hlen+nonceLen]
	pt, err := aead.Open(nil, nonce, blob[hlen+nonceLen:], aad(blob[:hlen], redisKey))
	if err != nil {
		return nil, fmt.Errorf("%w: auth failed for key id %x (tampered, or stored under another key)", ErrEnvelope, id)
	}
	return pt, nil
}

// blobExpiry reads the absolute expiry from a blob's header without
// authenticating it; ok is false for a version 1 blob, which has none.
func blobExpiry(blob []byte) (t time.Time, ok bool) {
	if len(blob) < headerLen || blob[0] != envelopeVersion {
		return time.Time{}, false
	}
	return time.UnixMilli(int64(binary.BigEndian.Uint64(blob[1+keyIDLen : headerLen]))), true
}

func aad(header []byte, redisKey string) []byte {
	a := make([]byte, 0, len(header)+len(redisKey))
	a = append(a, header...)
	return append(a, redisKey...)
}
