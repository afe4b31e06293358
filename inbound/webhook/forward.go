package webhook

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
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/inbound"
	"github.com/sessiongate/sessiongate/internal/httpclient"
)

// userAgent names the forwarder in the application's access logs.
const userAgent = "sessiongate-inbound-webhook/1"

// forwarder is the state of a handler made by [New]; read-only once made.
type forwarder struct {
	cfg     Config
	shown   string // the URL as errors show it: no credentials, no query
	replier inbound.Replier
	client  *http.Client
	log     *zap.Logger
}

// New returns the handler that forwards each message to cfg.URL: a signed
// JSON POST (docs/INBOUND.md has the format), and the reply in a 2xx
// response delivered through replier to the session that sent the
// message. The handler returns nil when the application took the message
// (2xx) and its reply, if any, was delivered; an error wrapped with
// [inbound.Permanent] for an answer retrying cannot change (a 4xx other
// than 408 and 429, a 3xx, a 2xx body it cannot use); a plain error, which
// the worker retries with backoff, for 408, 429, 5xx, a network error, a
// timeout, or a reply that could not be delivered.
//
// client may be nil ([NewClient] is used); whatever its CheckRedirect,
// redirects are never followed. log (nil: none) gets a debug line per
// POST, never the secret nor a body. The handler is safe for concurrent
// use; give it to an [inbound.Worker] as Default (or per event).
func New(cfg Config, replier inbound.Replier, client *http.Client, log *zap.Logger) (inbound.Handler, error) {
	cfg, u, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if replier == nil {
		return nil, fmt.Errorf("%w: no replier", ErrConfig)
	}
	if client == nil {
		client = NewClient(cfg.Timeout)
	}
	c := *client // our own copy: the caller's client keeps its redirect policy
	c.CheckRedirect = httpclient.NoRedirect
	if log == nil {
		log = zap.NewNop()
	}
	shown := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	f := &forwarder{cfg: cfg, shown: shown.String(), replier: replier, client: &c, log: log}
	return f.handle, nil
}

// payload is the JSON body of a POST: every field of the message, always
// present. It decodes into an [inbound.Message].
type payload struct {
	ID         string          `json:"id"`
	ClientID   string          `json:"client_id"`
	Event      string          `json:"event"`
	Data       json.RawMessage `json:"data"`
	UserID     string          `json:"user_id"`
	Handle     string          `json:"handle"`
	ConnID     string          `json:"conn_id"`
	Instance   string          `json:"instance"`
	System     bool            `json:"system"`
	Received   time.Time       `json:"received"`
	Deliveries int             `json:"deliveries"`
}

// handle is the [inbound.Handler].
func (f *forwarder) handle(ctx context.Context, m *inbound.Message) error {
	data := m.Data
	if len(bytes.TrimSpace(data)) == 0 {
		data = json.RawMessage("null")
	}
	body, err := json.Marshal(payload{ID: m.ID, ClientID: m.ClientID, Event: m.Event, Data: data,
		UserID: m.UserID, Handle: m.Handle, ConnID: m.ConnID, Instance: m.Instance, System: m.System,
		Received: m.Received, Deliveries: m.Deliveries})
	if err != nil {
		// Data is not JSON: the gateway queued something it should not
		// have, and no retry makes it JSON.
		return inbound.Permanent(fmt.Errorf("webhook: encode the message: %w", err))
	}
	resp, err := f.post(ctx, m.ID, body)
	if err != nil {
		return err
	}
	return f.handleResponse(ctx, m, resp)
}

// response is what the forwarder keeps of an answer.
type response struct {
	status  int
	body    []byte // at most MaxResponseBytes
	tooBig  bool   // the body was longer than MaxResponseBytes
	elapsed time.Duration
}

// post sends body, signed, and reads the answer within the timeout.
func (f *forwarder) post(ctx context.Context, id string, body []byte) (response, error) {
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return response{}, inbound.Permanent(fmt.Errorf("%w: the URL cannot be requested", ErrConfig))
	}
	ts := strconv.FormatInt(f.cfg.Now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, ts)
	req.Header.Set(HeaderSignature, Sign(f.cfg.Secret, ts, body))

	start := time.Now()
	resp, err := f.client.Do(req)
	if err != nil {
		return response{}, f.transportError(ctx, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return response{}, f.transportError(ctx, fmt.Errorf("status %d, reading the body: %w", resp.StatusCode, err))
	}
	r := response{status: resp.StatusCode, body: raw, elapsed: time.Since(start)}
	if len(raw) > MaxResponseBytes {
		r.body, r.tooBig = raw[:MaxResponseBytes], true
	}
	return r, nil
}

// transportError is the retryable error of a POST that got no (whole)
// answer. A *url.Error is unwrapped: its text quotes the URL, whose query
// may hold a token.
func (f *forwarder) transportError(ctx context.Context, err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	// The transport's own phase timeouts (NewClient) may fire with ours.
	if ne, ok := errors.AsType[net.Error](err); errors.Is(ctx.Err(), context.DeadlineExceeded) || (ok && ne.Timeout()) {
		return fmt.Errorf("webhook: POST %s: no answer within %s: %w", f.shown, f.cfg.Timeout, err)
	}
	return fmt.Errorf("webhook: POST %s: %w", f.shown, err)
}
