package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/logfield"
	"github.com/sessiongate/sessiongate/internal/redistest"
)

// encodeURIComponent percent-encodes s as JavaScript's encodeURIComponent
// does: every UTF-8 byte except A-Z a-z 0-9 - _ . ! ~ * ' ( ).
func encodeURIComponent(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// TestUserIDsAddressable: every id that login and POST /api/v1/sessions
// accept can be listed and revoked through /api/v1/users/{id}/sessions,
// encoded as a browser's encodeURIComponent encodes it; the revocation
// closes the user's sockets with 4500 and leaves nothing in the store.
func TestUserIDsAddressable(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		runUserIDsAddressable(t, startGateway(t, gwOptions{}))
	})
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		t.Cleanup(func() { rdb.Close() })
		runUserIDsAddressable(t, startGateway(t, gwOptions{rdb: rdb}))
	})
}

func runUserIDsAddressable(t *testing.T, g *testGateway) {
	tests := []struct {
		name, id string
	}{
		{name: "at sign", id: "ann@example.com"},
		{name: "plus", id: "a+b@example.com"},
		{name: "slash", id: "team/alice"},
		{name: "dot segments inside", id: "a/../b"},
		{name: "percent", id: "100%"},
		{name: "escape lookalike", id: "%2F"},
		{name: "escape lookalike space", id: "a%20b"},
		{name: "space", id: "ann example"},
		{name: "hash", id: "c#dev"},
		{name: "question mark", id: "who?x=1"},
		{name: "ampersand and equals", id: "a&b=c"},
		{name: "colon and semicolon", id: "urn:x;y"},
		{name: "pipe", id: "auth0|42"},
		{name: "non-ascii", id: "élodie@exämple.com"},
		{name: "cjk", id: "日本語"},
		{name: "rtl", id: "שלום"},
		{name: "unreserved only", id: "it's-(ok)*!~"},
	}
	// A bystander whose sessions no other revocation may touch.
	_, bystander := g.createSession("bystander")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := "/api/v1/users/" + encodeURIComponent(tc.id) + "/sessions"

			// Two sessions: one from the server API, one from a login.
			token, apiHandle := g.createSession(tc.id)
			loginHandle := loginAs(t, g, tc.id)
			ws := g.dialToken(token)
			if w := ws.mustNext("welcome"); w.UserID != tc.id {
				t.Fatalf("welcome user_id = %q, want %q", w.UserID, tc.id)
			}

			st, body := g.api(http.MethodGet, path, nil)
			var list struct {
				UserID   string `json:"user_id"`
				Sessions []struct {
					Handle string `json:"handle"`
				} `json:"sessions"`
			}
			if err := json.Unmarshal(body, &list); st != http.StatusOK || err != nil {
				t.Fatalf("GET %s: %d %s", path, st, body)
			}
			if list.UserID != tc.id || len(list.Sessions) != 2 {
				t.Fatalf("GET %s listed user %q with %d sessions, want %q with 2: %s", path, list.UserID, len(list.Sessions), tc.id, body)
			}

			st, body = g.api(http.MethodDelete, path, nil)
			var rev struct {
				Revoked int `json:"revoked"`
			}
			if err := json.Unmarshal(body, &rev); st != http.StatusOK || err != nil || rev.Revoked != 2 {
				t.Fatalf("DELETE %s: %d %s, want 200 with 2 revoked", path, st, body)
			}
			if code := ws.closeCode(generous); code != 4500 {
				t.Fatalf("socket of %q closed with %d, want 4500", tc.id, code)
			}
			for _, h := range []string{apiHandle, loginHandle} {
				if _, ok, err := g.store.Get(ctx, h); err != nil || ok {
					t.Fatalf("session %s of %q still in the store after revocation (%v)", logfield.ShortHandle(h), tc.id, err)
				}
			}
			if l, err := g.store.ListUser(ctx, tc.id); err != nil || len(l) != 0 {
				t.Fatalf("store still lists %d sessions of %q (%v)", len(l), tc.id, err)
			}
			if _, ok, err := g.store.Get(ctx, bystander); err != nil || !ok {
				t.Fatalf("bystander's session gone after revoking %q (%v)", tc.id, err)
			}
		})
	}
}

// loginAs logs id in through POST /auth/login and returns its handle.
func loginAs(t *testing.T, g *testGateway, id string) string {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"user_id": id, "password": "x"})
	resp, err := g.client().Post(g.http.URL+"/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login as %q: status %d", id, resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == g.cfg.EffectiveCookieName() {
			h, err := g.codec.Parse(c.Value)
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
	}
	t.Fatalf("login as %q set no session cookie", id)
	return ""
}

// TestUserIDPathRefused: a user id segment that is not a valid id, or not a
// valid percent-encoding, is a 400 JSON error, never an empty success.
func TestUserIDPathRefused(t *testing.T) {
	g := startGateway(t, gwOptions{})
	for _, tc := range []struct{ name, seg string }{
		{name: "right-to-left override", seg: "admin%E2%80%AEtxt"},
		{name: "zero width space", seg: "%E2%80%8B"},
		{name: "blank", seg: "%20"},
		{name: "not NFC", seg: "e%CC%81"},
		{name: "invalid utf8", seg: "a%FF"},
		{name: "dot dot escaped", seg: "%2E%2E"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range []string{http.MethodGet, http.MethodDelete} {
				st, body := g.api(m, "/api/v1/users/"+tc.seg+"/sessions", nil)
				if st != http.StatusBadRequest || decodeError(t, body) != codeBadRequest {
					t.Fatalf("%s %s: %d %s, want 400 bad_request", m, tc.seg, st, body)
				}
			}
		})
	}

	// A malformed escape never reaches a handler over the wire: net/http
	// refuses the request line itself with a 400. (Opaque is sent as the
	// request target verbatim.)
	req, _ := http.NewRequest(http.MethodDelete, g.http.URL+"/api/v1/users/x/sessions", nil)
	req.URL.Opaque = "/api/v1/users/%zz/sessions"
	req.Header.Set("Authorization", "Bearer "+testAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed escape over the wire: %d, want 400", resp.StatusCode)
	}
	// Handed to the gateway directly (another server in front, a test), it
	// is the gateway's own 400 JSON error.
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		req := httptest.NewRequest(m, "/api/v1/users/x/sessions", nil)
		req.URL.RawPath, req.URL.Path = "/api/v1/users/%zz/sessions", "/api/v1/users/%zz/sessions"
		req.Header.Set("Authorization", "Bearer "+testAPIKey)
		rec := httptest.NewRecorder()
		g.srv.Handler().ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || decodeError(t, rec.Body.Bytes()) != codeBadRequest {
			t.Fatalf("%s malformed escape: %d %s, want 400 bad_request", m, rec.Code, rec.Body)
		}
	}
}
