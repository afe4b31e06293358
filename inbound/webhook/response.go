package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/inbound"
	"github.com/sessiongate/sessiongate/internal/logfield"
)

// shownBody is how much of an error response's body an error quotes: enough
// for the application's error message, too little to carry its data.
const shownBody = 256

// replyBody is the part of a 2xx JSON body the forwarder reads.
type replyBody struct {
	Reply *struct {
		Event string          `json:"event"`
		Data  json.RawMessage `json:"data"`
	} `json:"reply"`
}

// handleResponse turns the application's answer to m into the handler's
// result, delivering its reply.
func (f *forwarder) handleResponse(ctx context.Context, m *inbound.Message, r response) error {
	f.log.Debug("inbound webhook posted", zap.String("msg_id", m.ID), zap.String("event", m.Event),
		logfield.Handle(m.Handle), zap.Int("status", r.status), zap.Duration("duration", r.elapsed))
	switch s := r.status; {
	case s >= 200 && s < 300:
		if r.tooBig {
			return inbound.Permanent(fmt.Errorf("%w: status %d with a body over %d bytes", ErrBadResponse, s, MaxResponseBytes))
		}
		return f.reply(ctx, m, r)
	case s == http.StatusRequestTimeout || s == http.StatusTooManyRequests || s >= 500:
		return fmt.Errorf("%w %d: %s", ErrStatus, s, clipBody(r.body))
	case s >= 300 && s < 400:
		return inbound.Permanent(fmt.Errorf("%w %d (redirects are not followed: set INBOUND_WEBHOOK_URL to the final URL)", ErrStatus, s))
	default:
		return inbound.Permanent(fmt.Errorf("%w %d: %s", ErrStatus, s, clipBody(r.body)))
	}
}

// reply delivers the reply of a 2xx answer, if it has one. A body that
// does not start with '{' (empty, "OK") carries no reply.
func (f *forwarder) reply(ctx context.Context, m *inbound.Message, r response) error {
	body := bytes.TrimSpace(r.body)
	if r.status == http.StatusNoContent || len(body) == 0 || body[0] != '{' {
		return nil
	}
	var rb replyBody
	if err := json.Unmarshal(body, &rb); err != nil {
		return inbound.Permanent(fmt.Errorf("%w: status %d with a body that is not valid JSON: %v", ErrBadResponse, r.status, err))
	}
	if rb.Reply == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	err := f.replier.Reply(ctx, m, rb.Reply.Event, rb.Reply.Data)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, inbound.ErrBadReply):
		return inbound.Permanent(fmt.Errorf("webhook: the application's reply: %w", err))
	default:
		// Retried: the application gets the message again (same
		// X-Sessiongate-Id) and answers again.
		return fmt.Errorf("webhook: deliver the reply: %w", err)
	}
}

// clipBody quotes the start of an error response's body for an error
// message: valid UTF-8, control and other unprintable characters shown as
// '.', at most shownBody bytes before quoting (so at most twice that
// after).
func clipBody(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "(empty body)"
	}
	more := ""
	if len(b) > 4*shownBody {
		b, more = b[:4*shownBody], "..." // enough to fill shownBody whatever the cleaning does
	}
	s := strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return '.'
		}
		return r
	}, strings.ToValidUTF8(string(b), "\uFFFD"))
	if len(s) > shownBody {
		cut := shownBody
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut-- // do not cut a character in two
		}
		s, more = s[:cut], "..."
	}
	return strconv.Quote(s) + more
}
