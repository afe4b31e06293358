package session

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeyLen) }

func TestSealOpenRoundTrip(t *testing.T) {
	kr := newTestKeyring(t)
	for _, pt := range [][]byte{nil, []byte("{}"), bytes.Repeat([]byte("x"), 70000)} {
		blob, err := kr.Seal("k", testExpiry, pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(blob) != minBlobLen+len(pt) || blob[0] != envelopeVersion {
			t.Fatalf("blob len %d, version %d", len(blob), blob[0])
		}
		if exp, ok := blobExpiry(blob); !ok || !exp.Equal(testExpiry.Truncate(time.Millisecond)) {
			t.Fatalf("header expiry = %v, %v; want %v", exp, ok, testExpiry)
		}
		got, err := kr.Open("k", blob)
		if err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("Open = %q, %v", got, err)
		}
	}
	a, _ := kr.Seal("k", testExpiry, []byte("same"))
	b, _ := kr.Seal("k", testExpiry, []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are equal: nonce reused")
	}
}

func TestOpenRejectsEveryFlippedByte(t *testing.T) {
	kr := newTestKeyring(t)
	blob, err := kr.Seal("sessiongate:s:abc", testExpiry, []byte(`{"user_id":"alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	for i := range blob {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(blob)
			bad[i] ^= mask
			if pt, err := kr.Open("sessiongate:s:abc", bad); !errors.Is(err, ErrEnvelope) || pt != nil {
				t.Fatalf("byte %d ^ %#x: Open = %q, %v; want ErrEnvelope", i, mask, pt, err)
			}
		}
	}
	for n := range len(blob) {
		if _, err := kr.Open("sessiongate:s:abc", blob[:n]); !errors.Is(err, ErrEnvelope) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if _, err := kr.Open("sessiongate:s:abc", append(bytes.Clone(blob), 0)); !errors.Is(err, ErrEnvelope) {
		t.Fatalf("extended blob: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	kr := newTestKeyring(t, key(1))
	blob, _ := kr.Seal("a", testExpiry, []byte("payload"))
	v3 := bytes.Clone(blob)
	v3[0] = 3
	asV1 := bytes.Clone(blob)
	asV1[0] = envelopeV1
	later := bytes.Clone(blob)
	later[headerLen-1]++
	other := newTestKeyring(t, key(2))
	tests := []struct {
		name     string
		kr       *Keyring
		redisKey string
		blob     []byte
		reason   string
	}{
		{name: "short", kr: kr, redisKey: "a", blob: blob[:10], reason: "short blob"},
		{name: "version", kr: kr, redisKey: "a", blob: v3, reason: "unsupported version 3"},
		{name: "passed off as version 1", kr: kr, redisKey: "a", blob: asV1, reason: "auth failed"},
		{name: "expiry moved", kr: kr, redisKey: "a", blob: later, reason: "auth failed"},
		{name: "v1 short", kr: kr, redisKey: "a", blob: sealV1(t, kr, "a", nil)[:minV1BlobLen-1], reason: "short blob"},
		{name: "wrong key", kr: other, redisKey: "a", blob: blob, reason: "unknown key id"},
		{name: "copied to another redis key", kr: kr, redisKey: "b", blob: blob, reason: "auth failed"},
		{name: "prefix of redis key", kr: kr, redisKey: "", blob: blob, reason: "auth failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := tc.kr.Open(tc.redisKey, tc.blob)
			if !errors.Is(err, ErrEnvelope) || pt != nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("Open = %q, %v; want ErrEnvelope with %q", pt, err, tc.reason)
			}
			if strings.Contains(err.Error(), hex.EncodeToString(key(1))) || strings.Contains(err.Error(), string(key(1))) {
				t.Fatal("error carries key material")
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	oldK, newK := key(1), key(2)
	sealed, err := newTestKeyring(t, oldK).Seal("k", testExpiry, []byte("old"))
	if err != nil {
		t.Fatal(err)
	}
	rotated := newTestKeyring(t, newK, oldK)
	if pt, err := rotated.Open("k", sealed); err != nil || string(pt) != "old" {
		t.Fatalf("[new, old] cannot open an old blob: %q, %v", pt, err)
	}
	fresh, _ := rotated.Seal("k", testExpiry, []byte("new"))
	id := KeyID(newK)
	if !bytes.Equal(fresh[1:1+keyIDLen], id[:]) {
		t.Fatal("a rotated keyring does not seal with its first key")
	}
	// Order of the old keys does not matter: the key id picks the key.
	if pt, err := newTestKeyring(t, key(3), oldK, newK).Open("k", sealed); err != nil || string(pt) != "old" {
		t.Fatalf("reordered keyring: %q, %v", pt, err)
	}
	oldID := KeyID(oldK)
	_, err = newTestKeyring(t, newK).Open("k", sealed)
	if !errors.Is(err, ErrEnvelope) || !strings.Contains(err.Error(), "unknown key id "+hex.EncodeToString(oldID[:])) {
		t.Fatalf("[new] alone: %v; want a clear unknown key id error", err)
	}
}

// Version 1 envelopes, sealed before the expiry joined the header, still
// open; they carry no header expiry.
func TestOpenVersion1(t *testing.T) {
	kr := newTestKeyring(t)
	blob := sealV1(t, kr, "k", []byte("old"))
	if pt, err := kr.Open("k", blob); err != nil || string(pt) != "old" {
		t.Fatalf("Open(v1) = %q, %v", pt, err)
	}
	if _, ok := blobExpiry(blob); ok {
		t.Fatal("a version 1 blob has a header expiry")
	}
	if _, err := kr.Open("other", blob); !errors.Is(err, ErrEnvelope) {
		t.Fatalf("v1 blob opened under another key: %v", err)
	}
}

func TestParseKeys(t *testing.T) {
	k1, k2 := strings.Repeat("ab", 32), strings.Repeat("CD", 32)
	tests := []struct {
		name    string
		csv     string
		want    int
		wantErr string
	}{
		{name: "one", csv: k1, want: 1},
		{name: "two with spaces", csv: " " + k1 + " , " + k2, want: 2},
		{name: "empty", csv: "", wantErr: "no key given"},
		{name: "blank", csv: "  ", wantErr: "no key given"},
		{name: "short", csv: k1 + ",abcdefabcdef", wantErr: "key 2: must be 64 hex characters (32 bytes); got 12 characters"},
		{name: "trailing comma", csv: k1 + ",", wantErr: "key 2: must be 64 hex characters (32 bytes); got 0 characters"},
		{name: "not hex", csv: strings.Repeat("zz", 32), wantErr: "key 1: must be 64 hex characters (32 bytes); it contains a non-hex character"},
		{name: "base64 instead of hex", csv: "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=", wantErr: "key 1: must be 64 hex characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ParseKeys(tc.csv)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseKeys = %v; want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "abcdefabcdef") || strings.Contains(err.Error(), "zzzz") {
					t.Fatal("error echoes key material")
				}
				return
			}
			if err != nil || len(keys) != tc.want {
				t.Fatalf("ParseKeys = %d keys, %v", len(keys), err)
			}
			for _, k := range keys {
				if len(k) != KeyLen {
					t.Fatalf("key of %d bytes", len(k))
				}
			}
			if _, err := NewKeyring(keys); err != nil {
				t.Fatalf("NewKeyring(parsed): %v", err)
			}
		})
	}
}

func TestNewKeyringRejects(t *testing.T) {
	tests := []struct {
		name    string
		keys    [][]byte
		wantErr string
	}{
		{name: "none", keys: nil, wantErr: "no key given"},
		{name: "short", keys: [][]byte{key(1), key(2)[:16]}, wantErr: "key 2: must be 32 bytes; got 16"},
		{name: "duplicate", keys: [][]byte{key(1), key(1)}, wantErr: "key 2: same key id"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			kr, err := NewKeyring(tc.keys)
			if kr != nil || !errors.Is(err, ErrInvalidKey) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("NewKeyring = %v, %v; want %q", kr, err, tc.wantErr)
			}
		})
	}
}
