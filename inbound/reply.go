package inbound

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sessiongate/sessiongate/history"
	"github.com/sessiongate/sessiongate/pubsub"
)

// Replier answers the sender of a message: the event goes to the
// connections of the session that sent it (to.Handle). Handlers call it;
// implementations are safe for concurrent use. A reply is an ordinary
// event: stored in the user's history stream, so a client that reconnects
// gets it on resume.
type Replier interface {
	Reply(ctx context.Context, to *Message, event string, data any) error
}

// MaxEventName is the longest event name a reply may carry (the server
// API's limit).
const MaxEventName = 128

// DefaultEventChannel is the gateway's default event channel
// (REDIS_KEY_PREFIX + "events").
const DefaultEventChannel = "sessiongate:events"

// Appender stores an event in a history stream and publishes it on the
// bus channel in one step: a *history.Redis built with the gateway's
// history configuration (HISTORY_SIZE, HISTORY_TTL, REDIS_KEY_PREFIX).
type Appender interface {
	Append(ctx context.Context, stream string, data []byte, channel string) (history.Position, error)
}

// RedisReplier is the [Replier] of a worker that runs beside gateways in
// Redis mode: it publishes a reply exactly as the gateway's publish API
// does (a message event for the sender's session, appended to the user's
// history stream and published on the event channel in one step), so
// every gateway delivers it to the session's connections with its
// position. Its fields are read-only once it is in use.
type RedisReplier struct {
	// History stores and publishes the reply. Required.
	History Appender
	// Channel is the gateway's event channel. Defaults to
	// [DefaultEventChannel].
	Channel string
	// Origin names the publisher in the event; it must not be a gateway
	// instance's id (a gateway ignores its own events' echo). Defaults to
	// "inbound-worker".
	Origin string
}

// Reply publishes event with data (JSON-encoded; a json.RawMessage or
// []byte is taken as is; it must encode to a JSON object or null) to the
// session that sent to.
func (r RedisReplier) Reply(ctx context.Context, to *Message, event string, data any) error {
	if r.History == nil {
		return fmt.Errorf("%w: RedisReplier.History is nil", ErrBadReply)
	}
	payload, err := replyEvent(to, event, data, r.Origin)
	if err != nil {
		return err
	}
	ch := r.Channel
	if ch == "" {
		ch = DefaultEventChannel
	}
	if _, err := r.History.Append(ctx, history.UserStream(to.UserID), payload, ch); err != nil {
		return fmt.Errorf("inbound: reply: %w", err)
	}
	return nil
}

// replyEvent is the encoded message event of a reply to m's session.
func replyEvent(m *Message, event string, data any, origin string) ([]byte, error) {
	if m == nil || m.Handle == "" || m.UserID == "" {
		return nil, fmt.Errorf("%w: the message has no sender (user id and handle)", ErrBadReply)
	}
	if event == "" || len(event) > MaxEventName {
		return nil, fmt.Errorf("%w: event name must be 1 to %d bytes", ErrBadReply, MaxEventName)
	}
	raw, err := replyData(data)
	if err != nil {
		return nil, err
	}
	if origin == "" {
		origin = "inbound-worker"
	}
	b, err := pubsub.Event{Kind: pubsub.KindMessage, ID: pubsub.NewEventID(), Origin: origin, Time: time.Now().UTC(),
		Target: &pubsub.Target{Handle: m.Handle}, Name: event, Data: raw}.Encode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadReply, err)
	}
	return b, nil
}

// replyData encodes a reply's data and checks it is an object or null,
// the one shape clients are promised.
func replyData(data any) (json.RawMessage, error) {
	var raw []byte
	switch d := data.(type) {
	case json.RawMessage:
		raw = d
	case []byte:
		raw = d
	default:
		b, err := json.Marshal(data)
		if err != nil {
			return nil, fmt.Errorf("%w: data: %v", ErrBadReply, err)
		}
		raw = b
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return json.RawMessage("null"), nil
	}
	if !json.Valid(raw) || (raw[0] != '{' && !bytes.Equal(raw, []byte("null"))) {
		return nil, fmt.Errorf("%w: data must be a JSON object or null", ErrBadReply)
	}
	return json.RawMessage(raw), nil
}
