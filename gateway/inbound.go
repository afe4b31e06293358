package gateway

import (
	"context"
	"errors"
	"time"
	"unicode"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/inbound"
)

// Inbound limits: a message's event name is 1 to maxInboundEvent bytes,
// like a published event's; an enqueue waits at most enqueueTimeout.
const (
	maxInboundEvent = 128
	enqueueTimeout  = 2 * time.Second
)

// Inbound outcomes (the result label of sessiongate_inbound_messages_total).
const (
	inboundQueued = "queued"
)

// onMessage is the connection manager's hook for each client message
// within the inbound rate: it queues the message durably with its sender
// and returns the ack, or the error that tells the client it was not
// queued. It runs in the connection's reader, one message at a time, so
// one connection's messages are queued in the order sent.
func (s *Server) onMessage(info *connmgr.Info, msg connmgr.ClientMessage) []byte {
	refuse := func(code, text string) []byte {
		s.metrics.inbound.WithLabelValues(code).Inc()
		return connmgr.EncodeError(msg.ID, code, text)
	}
	if len(msg.Data) > s.cfg.InboundMaxBytes {
		return refuse(connmgr.ErrCodeTooLarge, "data is larger than INBOUND_MAX_BYTES")
	}
	if !validInboundEvent(msg.Event) {
		return refuse(connmgr.ErrCodeInvalid, "event must be 1 to 128 bytes of printable text")
	}
	ctx, cancel := context.WithTimeout(s.baseCtx, enqueueTimeout)
	defer cancel()
	start := time.Now()
	id, err := s.d.Inbound.Enqueue(ctx, inbound.Message{
		ClientID: msg.ID,
		Event:    msg.Event,
		Data:     msg.Data,
		UserID:   info.UserID,
		Handle:   info.Handle,
		ConnID:   info.ID,
		Instance: s.cfg.InstanceID,
		Received: s.now(),
	})
	s.metrics.enqueueLatency.Observe(time.Since(start).Seconds())
	switch {
	case errors.Is(err, inbound.ErrFull):
		return refuse(connmgr.ErrCodeQueueFull, "the inbound queue is full: not queued; retry later")
	case err != nil:
		s.log.Warn("inbound enqueue failed", zap.String("user_id", info.UserID), zap.String("conn_id", info.ID), zap.Error(err))
		return refuse(connmgr.ErrCodeUnavailable, "the inbound queue is unavailable: not queued; retry later")
	}
	s.metrics.inbound.WithLabelValues(inboundQueued).Inc()
	return connmgr.EncodeAck(msg.ID, id)
}

// validInboundEvent reports whether a client message's event name is
// empty (the worker's default handler) or 1 to maxInboundEvent bytes of
// UTF-8 without control characters.
func validInboundEvent(e string) bool {
	if len(e) > maxInboundEvent || !utf8.ValidString(e) {
		return false
	}
	for _, r := range e {
		if unicode.IsControl(r) {
			return false
		}
	}
	return true
}
