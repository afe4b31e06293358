package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// apiClient calls a gateway's server API (or the floor server) over
// keep-alive connections.
type apiClient struct {
	base string
	key  string
	hc   *http.Client
}

func newAPIClient(base, key string) *apiClient {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &apiClient{base: base, key: key, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

func (a *apiClient) close() { a.hc.CloseIdleConnections() }

// do sends body (JSON-encoded unless it is []byte) and decodes a JSON answer
// into out when out is not nil. A status other than want is an error.
func (a *apiClient) do(ctx context.Context, method, path string, body any, want int, out any) error {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.key != "" {
		req.Header.Set("Authorization", "Bearer "+a.key)
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, bytes.TrimSpace(msg))
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

// session is one session created through the server API.
type session struct {
	UserID string `json:"-"`
	Token  string `json:"token"`
	Handle string `json:"handle"`
}

// createSessions creates one session per user id, conc requests at a time.
func (a *apiClient) createSessions(ctx context.Context, users []string, conc int) ([]session, error) {
	out := make([]session, len(users))
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	next := make(chan int)
	for range conc {
		wg.Go(func() {
			for i := range next {
				var s session
				err := a.do(ctx, http.MethodPost, "/api/v1/sessions", map[string]string{"user_id": users[i]}, http.StatusCreated, &s)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					continue
				}
				s.UserID = users[i]
				out[i] = s
			}
		})
	}
	for i := range users {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, first
}

func (a *apiClient) revoke(ctx context.Context, handle string) error {
	return a.do(ctx, http.MethodDelete, "/api/v1/sessions/"+handle, nil, http.StatusNoContent, nil)
}

// publish posts a pre-encoded publish request body.
func (a *apiClient) publish(ctx context.Context, body []byte) error {
	return a.do(ctx, http.MethodPost, "/api/v1/publish", body, http.StatusAccepted, nil)
}

// published is the answer to a publish: the event's position in its
// history stream (empty with history off).
type published struct {
	ID     string `json:"id"`
	Stream string `json:"stream"`
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// publishAt is publish, returning the event's position.
func (a *apiClient) publishAt(ctx context.Context, body []byte) (published, error) {
	var p published
	err := a.do(ctx, http.MethodPost, "/api/v1/publish", body, http.StatusAccepted, &p)
	return p, err
}
