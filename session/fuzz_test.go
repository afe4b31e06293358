package session

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

func FuzzParseToken(f *testing.F) {
	c := newTestCodec(f)
	tok, _, err := c.New()
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{
		tok, tok[:len(tok)-1], tok + "A", flipChar(tok, 0), flipChar(tok, len(tok)-1),
		"", ".", "a.b", "garbage", string(make([]byte, tokenLen)),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		handle, err := c.Parse(token)
		if err != nil {
			if handle != "" {
				t.Fatalf("Parse failed with a handle %q", handle)
			}
			return
		}
		// Only minted tokens pass, so anything accepted is canonical.
		if !ValidHandle(handle) || len(token) != tokenLen {
			t.Fatalf("Parse(%q) accepted: handle %q", token, handle)
		}
		again, err := c.Parse(token)
		if err != nil || again != handle {
			t.Fatalf("Parse is not deterministic: %q vs %q, %v", again, handle, err)
		}
	})
}

func FuzzOpenEnvelope(f *testing.F) {
	kr := newTestKeyring(f)
	blob, err := kr.Seal("sessiongate:s:x", testExpiry, []byte(`{"user_id":"alice"}`))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(blob, "sessiongate:s:x", []byte("hello"))
	f.Add(blob[:minBlobLen], "sessiongate:s:x", []byte{})
	f.Add([]byte{1, 2, 3}, "", []byte(nil))
	f.Add(make([]byte, 100), "k", bytes.Repeat([]byte{0xff}, 40))
	f.Fuzz(func(t *testing.T, blob []byte, redisKey string, plaintext []byte) {
		if pt, err := kr.Open(redisKey, blob); err == nil {
			// Only a sealed blob opens; the fuzzer cannot forge GCM, so this
			// is the seed, opened under its own key.
			if redisKey != "sessiongate:s:x" {
				t.Fatalf("blob opened under key %q: %q", redisKey, pt)
			}
		}
		sealed, err := kr.Seal(redisKey, testExpiry, plaintext)
		if err != nil {
			t.Fatal(err)
		}
		got, err := kr.Open(redisKey, sealed)
		if err != nil || !bytes.Equal(got, plaintext) {
			t.Fatalf("round trip: %q, %v; want %q", got, err, plaintext)
		}
		if _, err := kr.Open(redisKey+"x", sealed); err == nil {
			t.Fatal("blob opened under another key")
		}
	})
}

// FuzzValidUserID: CheckUserID never panics, agrees with ValidUserID, and an
// accepted id is canonical (NFC, no surrounding space, no invisible
// character) and survives every trip it takes: JSON, a URL path segment
// (encoded as encodeURIComponent would) and a store.
func FuzzValidUserID(f *testing.F) {
	for _, seed := range []string{
		"alice", "ann@example.com", "team/alice", "100%", "ann example", "c#dev?",
		"élodie", "e\u0301lodie", "日本語", "שלום", "abcשלום", "admin\u202etxt", "a\u200bb",
		" ", "", ".", "..", "a\xff", "ａｌｉｃｅ", "\u0301a", strings.Repeat("é", 70),
	} {
		f.Add(seed)
	}
	store := NewMemoryStore(newTestCodec(f), Options{})
	f.Fuzz(func(t *testing.T, id string) {
		err := CheckUserID(id)
		if (err == nil) != ValidUserID(id) {
			t.Fatalf("CheckUserID and ValidUserID disagree on %+q", id)
		}
		if err != nil {
			return
		}
		if !norm.NFC.IsNormalString(id) || strings.TrimSpace(id) != id || id == "." || id == ".." || len(id) > MaxUserIDLen {
			t.Fatalf("accepted non-canonical id %+q", id)
		}
		for _, r := range id {
			if r != ' ' && (unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
				t.Fatalf("accepted id %+q with %U", id, r)
			}
		}
		b, err := json.Marshal(map[string]string{"user_id": id})
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]string
		if err := json.Unmarshal(b, &back); err != nil || back["user_id"] != id {
			t.Fatalf("JSON round trip of %+q: %q, %v", id, back["user_id"], err)
		}
		seg := url.PathEscape(id)
		if dec, err := url.PathUnescape(seg); err != nil || dec != id {
			t.Fatalf("path round trip of %+q: %q, %v", id, dec, err)
		}
		ctx := context.Background()
		_, s, err := store.Create(ctx, id, nil)
		if err != nil {
			t.Fatalf("Create(%+q): %v", id, err)
		}
		got, ok, err := store.Get(ctx, s.Handle)
		if err != nil || !ok || got.UserID != id {
			t.Fatalf("store round trip of %+q: %q, %v, %v", id, got.UserID, ok, err)
		}
		if _, err := store.DestroyUser(ctx, id); err != nil {
			t.Fatal(err)
		}
	})
}
