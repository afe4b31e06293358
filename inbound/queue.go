package inbound

import (
	"context"
	"encoding/json"
	"time"
)

// Message is one client message as queued: what the client sent and who
// sent it. The gateway fills every field but ID and Deliveries.
type Message struct {
	// ID is the queue's id of the message, unique in the queue (Redis: the
	// partition and the stream entry id, e.g. "3-1732870000000-0"). Use it
	// as an idempotency key. Set by Enqueue.
	ID string `json:"id"`
	// ClientID is the id the client gave the message (acks and errors
	// name it); may be empty.
	ClientID string `json:"client_id,omitempty"`
	// Event is the message's name, which selects the worker's handler;
	// may be empty (the default handler).
	Event string `json:"event,omitempty"`
	// Data is the message's JSON payload as the client sent it.
	Data json.RawMessage `json:"data"`
	// UserID, Handle and ConnID are the sender: its user, session handle
	// and connection. Replies go to the user or the session.
	UserID string `json:"user_id"`
	Handle string `json:"handle"`
	ConnID string `json:"conn_id"`
	// Instance is the gateway instance that received it.
	Instance string `json:"instance"`
	// System marks a message the gateway itself sent, not a client: the
	// presence events "presence.online" and "presence.offline"
	// (PRESENCE_EVENTS), whose UserID is the user they are about and
	// whose Handle and ConnID are empty. A client cannot set it.
	System bool `json:"system,omitempty"`
	// Received is when the gateway received it.
	Received time.Time `json:"received"`
	// Deliveries is how many times the message has been delivered to a
	// consumer, this delivery included (1 the first time). Set on read.
	Deliveries int `json:"deliveries,omitempty"`
}

// Producer is the gateway's side of the queue.
type Producer interface {
	// Enqueue appends m durably (Redis: once XADD returned) to the
	// partition of m.UserID and returns its ID. Messages of one user keep
	// their order. It returns an error wrapping [ErrFull] when that
	// partition holds MaxLen messages not yet acknowledged, or another
	// error when the queue cannot be reached: the message was not queued.
	Enqueue(ctx context.Context, m Message) (string, error)
}
