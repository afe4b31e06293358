package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"go.uber.org/zap"
)

// FuzzRequestBodies sends arbitrary bodies to every endpoint that parses
// one. Whatever the input: a JSON answer, never a 5xx, and the gateway keeps
// serving.
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{
		`{"user_id":"alice","password":"x"}`,
		`{"user_id":"alice","data":{"a":1}}`,
		`{"target":{"all":true},"event":"e","data":{"n":1}}`,
		`{"target":{"user_id":"a","handle":"b"},"event":"e"}`,
		`{"target":{"handle":"` + string(bytes.Repeat([]byte("ab"), 32)) + `"},"event":"e","data":null}`,
		`{"user_id":"\u0000"}`, `{"user_id":"a\u0085b"}`, `[]`, `null`, `{"data":"` + string(bytes.Repeat([]byte("x"), 1000)) + `"}`, "\xff\xfe", ``,
		// Trailing garbage and concatenated objects: refused, never half-read.
		`{"user_id":"alice","password":"x"}garbage`,
		`{"user_id":"alice","data":{"a":1}} {"user_id":"mallory"}`,
		`{"target":{"all":true},"event":"e"}{"target":{"all":true},"event":"e"}`,
		`{"user_id":"alice"}}`, `{"user_id":"alice"} 1`, `{"user_id":"alice"}` + "\n\t ",
		`{"target":{"all":true},"event":"e","data":1}`, `{"target":{"all":true},"event":"e","data":"x"}`,
	} {
		f.Add(seed)
	}
	// No test logger: the fuzz engine forbids f.Logf from the gateway's
	// background goroutines.
	g := startGateway(f, gwOptions{log: zap.NewNop(), env: map[string]string{"RATE_LIMIT_RPS": "0"}})
	paths := []string{"/auth/login", "/api/v1/sessions", "/api/v1/publish"}
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range paths {
			req, _ := http.NewRequest(http.MethodPost, g.http.URL+p, bytes.NewReader([]byte(body)))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+testAPIKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			// Embedded mode has no store to fail: even a 503 means input
			// reached the store unvalidated.
			if resp.StatusCode >= 500 {
				t.Fatalf("%s answered %d to %q: %s", p, resp.StatusCode, body, b)
			}
			if !json.Valid(b) {
				t.Fatalf("%s answered non-JSON %q to %q", p, b, body)
			}
			// Only a body that is one JSON value may be accepted.
			if resp.StatusCode < 300 && !json.Valid([]byte(body)) {
				t.Fatalf("%s accepted %q, which is not one JSON value: %d %s", p, body, resp.StatusCode, b)
			}
		}
	})
}
