package gateway

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// webhookServer is the application's login endpoint, scripted per test.
func webhookServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL + "/login?key=app-secret-in-query"
}

func TestWebhookAuthenticator(t *testing.T) {
	tests := []struct {
		name     string
		handler  http.HandlerFunc
		url      string
		wantErr  error
		wantMsg  string // in the error, when set
		wantUser string
		wantData string
	}{
		{name: "accepted", handler: func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			if !strings.Contains(string(b), `"password":"pw"`) || r.Header.Get("Content-Type") != "application/json" {
				http.Error(w, "bad forward", 500)
				return
			}
			_, _ = w.Write([]byte(`{"user_id":"alice","data":{"role":"admin"}}`))
		}, wantUser: "alice", wantData: `{"role":"admin"}`},
		{name: "refused 401", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(401) }, wantErr: ErrBadCredentials},
		{name: "refused 403", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(403) }, wantErr: ErrBadCredentials},
		{name: "server error", handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }, wantErr: ErrUpstream},
		{name: "not JSON", handler: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<html>")) }, wantErr: ErrUpstream},
		{name: "no user id", handler: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"data":{}}`)) }, wantErr: ErrUpstream},
		{name: "data not an object", handler: func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(`{"user_id":"a","data":[1]}`)) }, wantErr: ErrUpstream},
		{name: "too large", handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte(`{"user_id":"a","data":{"x":"` + strings.Repeat("x", 70<<10) + `"}}`))
		}, wantErr: ErrUpstream},
		// Never answers: only the authenticator's timeout ends the call. (The
		// server notices the client leaving only once the body is read.)
		{name: "timeout", handler: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
		}, wantErr: ErrUpstream, wantMsg: "no answer within"},
		{name: "unreachable", url: "http://127.0.0.1:" + "1" + "/login?key=app-secret-in-query", wantErr: ErrUpstream},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := tc.url
			if tc.handler != nil {
				u = webhookServer(t, tc.handler)
			}
			a := &WebhookAuthenticator{URL: u, Timeout: 300 * time.Millisecond}
			id, err := a.Authenticate(context.Background(), []byte(`{"user_id":"alice","password":"pw"}`))
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantMsg) {
					t.Fatalf("err = %v, want %v (%q)", err, tc.wantErr, tc.wantMsg)
				}
				if strings.Contains(err.Error(), "app-secret-in-query") {
					t.Fatalf("error quotes the webhook URL's query: %v", err)
				}
				return
			}
			if err != nil || id.UserID != tc.wantUser || string(id.Data) != tc.wantData {
				t.Fatalf("got %+v, %v", id, err)
			}
		})
	}
}

// Through /auth/login: refused credentials are a 401, a failing application
// a 502, an accepted login a session with the application's data.
func TestLoginWithWebhook(t *testing.T) {
	url := webhookServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch {
		case strings.Contains(string(b), `"password":"right"`):
			_, _ = w.Write([]byte(`{"user_id":"bob","data":{"plan":"pro"}}`))
		case strings.Contains(string(b), `"password":"boom"`):
			w.WriteHeader(503)
		default:
			w.WriteHeader(401)
		}
	})
	g := startGateway(t, gwOptions{auth: &WebhookAuthenticator{URL: url, Timeout: time.Second}})
	for _, tc := range []struct {
		name, password string
		status         int
	}{
		{"right password", "right", 200},
		{"wrong password", "wrong", 401},
		{"application down", "boom", 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := g.client()
			req, _ := http.NewRequest("POST", g.http.URL+"/auth/login", strings.NewReader(`{"user_id":"bob","password":"`+tc.password+`"}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			if tc.status != 200 {
				decodeError(t, b)
				return
			}
			r, _ := hc.Get(g.http.URL + "/auth/session")
			sb, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if !strings.Contains(string(sb), `"data":{"plan":"pro"}`) {
				t.Fatalf("session lacks the application's data: %s", sb)
			}
		})
	}
}

// The transport's response-header timeout can fire before the request's
// deadline (they are the same span and race): it is the same "no answer in
// time" failure, told the same way. Forced here by a client whose header
// timeout is far shorter than the authenticator's.
func TestWebhookHeaderTimeoutIsNoAnswer(t *testing.T) {
	u := webhookServer(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	})
	a := &WebhookAuthenticator{URL: u, Timeout: time.Minute}
	a.once.Do(func() { a.client = newWebhookClient(50 * time.Millisecond) })
	_, err := a.Authenticate(context.Background(), []byte(`{"user_id":"alice","password":"pw"}`))
	if !errors.Is(err, ErrUpstream) || !strings.Contains(err.Error(), "no answer within") {
		t.Fatalf("err = %v, want ErrUpstream saying no answer within", err)
	}
}
