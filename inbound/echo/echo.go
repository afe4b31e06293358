// Package echo is the example worker the demo page talks to: it answers
// every client message with an "echo.reply" event to the session that
// sent it. cmd/worker runs it against Redis; an embedded gateway with the
// demo page on runs it in its own process, on the in-process queue.
package echo

import (
	"context"

	"github.com/sessiongate/sessiongate/inbound"
)

// ReplyEvent is the event name of the replies.
const ReplyEvent = "echo.reply"

// Reply is what a reply carries.
type Reply struct {
	// MsgID is the message's queue id (the ack's msg_id), ClientID the
	// client's own id for it.
	MsgID    string `json:"msg_id"`
	ClientID string `json:"client_id,omitempty"`
	// Event and Data are the message's, echoed.
	Event string `json:"event,omitempty"`
	Data  any    `json:"data"`
	// Deliveries is the delivery this reply came from (1 unless a worker
	// failed or died before).
	Deliveries int `json:"deliveries"`
	// Worker names the worker that answered.
	Worker string `json:"worker"`
}

// Handler returns the echo handler: each message is answered through r,
// named worker. A failed reply is returned, so the worker retries it.
func Handler(r inbound.Replier, worker string) inbound.Handler {
	return func(ctx context.Context, m *inbound.Message) error {
		return r.Reply(ctx, m, ReplyEvent, Reply{
			MsgID:      m.ID,
			ClientID:   m.ClientID,
			Event:      m.Event,
			Data:       m.Data,
			Deliveries: m.Deliveries,
			Worker:     worker,
		})
	}
}
