package session

import (
	"bytes"
	"testing"
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
	blob, err := kr.Seal("sessiongate:s:x", []byte(`{"user_id":"alice"}`))
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
		sealed, err := kr.Seal(redisKey, plaintext)
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
