package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/sessiongate/sessiongate/session"
)

// Credentials is the body of POST /auth/login.
type Credentials struct {
	UserID   string `json:"user_id"`
	Password string `json:"password"`
}

// Identity is who an [Authenticator] says the caller is.
type Identity struct {
	UserID string
	Data   json.RawMessage
}

// Authenticator decides who a login request belongs to. Implementations must
// be safe for concurrent use.
type Authenticator interface {
	// Authenticate returns the identity for the raw login body, or an error
	// wrapping ErrBadCredentials (401) or ErrUpstream (502).
	Authenticate(ctx context.Context, body []byte) (Identity, error)
}

// Authentication errors.
var (
	// ErrBadCredentials means the credentials were refused: a 401.
	ErrBadCredentials = errors.New("gateway: invalid credentials")
	// ErrUpstream means the authentication service failed: a 502.
	ErrUpstream = errors.New("gateway: authentication service failed")
)

// DevAuthenticator accepts any well-formed user id without a password. It is
// for development mode only; production configuration refuses it.
type DevAuthenticator struct{}

// Authenticate implements [Authenticator].
func (DevAuthenticator) Authenticate(_ context.Context, body []byte) (Identity, error) {
	var c Credentials
	if err := json.Unmarshal(body, &c); err != nil {
		return Identity{}, fmt.Errorf("%w: body must be a JSON object with user_id", ErrBadCredentials)
	}
	if err := validUserID(c.UserID); err != nil {
		return Identity{}, fmt.Errorf("%w: %v", ErrBadCredentials, err)
	}
	return Identity{UserID: c.UserID}, nil
}

// WebhookAuthenticator forwards the login body to the application's URL and
// takes the identity from its answer: 2xx with {"user_id":"...","data":{...}}
// is a login; 401/403 is refused credentials; anything else (a 3xx
// included: redirects are never followed, so credentials are never
// re-sent elsewhere), a timeout or an unreadable answer is an upstream
// failure.
//
// It calls the URL with an HTTP client of its own, built on first use:
// dial, TLS handshake and response header timeouts, no redirects, no cookie
// jar. Set URL and Timeout before the first call; it is then safe for
// concurrent use.
type WebhookAuthenticator struct {
	URL     string
	Timeout time.Duration // Defaults to 5s.

	once   sync.Once
	client *http.Client
}

// maxWebhookResponse bounds what we read from the application.
const maxWebhookResponse = 64 << 10

// Authenticate implements [Authenticator].
func (w *WebhookAuthenticator) Authenticate(ctx context.Context, body []byte) (Identity, error) {
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	w.once.Do(func() { w.client = newWebhookClient(timeout) })
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return Identity{}, fmt.Errorf("%w: build request: %v", ErrUpstream, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		// The request's deadline and the transport's response-header
		// timeout are the same span and race each other: either one is
		// "no answer in time", and says so the same way.
		var ne net.Error
		if ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
			return Identity{}, fmt.Errorf("%w: no answer within %s", ErrUpstream, timeout)
		}
		// Not the *url.Error itself: it quotes the URL, whose query may
		// carry the application's secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return Identity{}, fmt.Errorf("%w: %v", ErrUpstream, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxWebhookResponse+1))
	if err != nil {
		return Identity{}, fmt.Errorf("%w: read answer: %v", ErrUpstream, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return Identity{}, ErrBadCredentials
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		return Identity{}, fmt.Errorf("%w: answered HTTP %d, a redirect (never followed: it would re-send the credentials)", ErrUpstream, resp.StatusCode)
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return Identity{}, fmt.Errorf("%w: answered HTTP %d", ErrUpstream, resp.StatusCode)
	case len(raw) > maxWebhookResponse:
		return Identity{}, fmt.Errorf("%w: answer larger than %d bytes", ErrUpstream, maxWebhookResponse)
	}
	var out struct {
		UserID string          `json:"user_id"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return Identity{}, fmt.Errorf("%w: answer is not JSON: %v", ErrUpstream, err)
	}
	if err := validUserID(out.UserID); err != nil {
		return Identity{}, fmt.Errorf("%w: answer has %v", ErrUpstream, err)
	}
	if len(out.Data) > 0 && !isJSONObjectOrNull(out.Data) {
		return Identity{}, fmt.Errorf("%w: answer's data must be a JSON object", ErrUpstream)
	}
	if string(bytes.TrimSpace(out.Data)) == "null" {
		out.Data = nil
	}
	return Identity{UserID: out.UserID, Data: out.Data}, nil
}

// validUserID is the session store's rule (session.ValidUserID) as an error
// a client can read, so a bad id fails with a 400/401 before any store call
// rather than as a store failure.
func validUserID(id string) error {
	var ue *session.UserIDError
	if err := session.CheckUserID(id); errors.As(err, &ue) {
		return fmt.Errorf("user_id %s (see the user id rules in docs/PROTOCOL.md)", ue.Reason)
	}
	return nil
}

func isJSONObjectOrNull(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return true
	}
	if string(b) == "null" {
		return true
	}
	return b[0] == '{' && json.Valid(b)
}
