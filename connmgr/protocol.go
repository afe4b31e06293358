package connmgr

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// Client message types accepted by [ParseClientMessage].
const (
	// TypePong answers a server {"type":"ping"}.
	TypePong = "pong"
	// TypeMessage carries an application message in its data field.
	TypeMessage = "message"
)

// pingFrame is the server ping; [New] converts it once and every connection
// shares that slice.
const pingFrame = `{"type":"ping"}`

// pongFrame is the client's answer as every known client encodes it.
const pongFrame = `{"type":"pong"}`

type eventFrame struct {
	Type   string          `json:"type"`
	ID     string          `json:"id"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data"`
	Stream string          `json:"stream,omitempty"`
	Epoch  string          `json:"epoch,omitempty"`
	Offset uint64          `json:"offset,omitempty"`
}

// StreamPosition is where a history stream is: its epoch and an offset.
// The zero StreamPosition means "no position" (history off).
type StreamPosition struct {
	Epoch  string `json:"epoch"`
	Offset uint64 `json:"offset"`
}

// EventPosition is where an event is in its history stream. Stream is the
// client's name for it ("user" or "all"); the zero EventPosition (history
// off) adds nothing to the frame.
type EventPosition struct {
	Stream string
	StreamPosition
}

// EncodeEvent returns the text frame
// {"type":"event","id":id,"event":name,"data":data}.
//
// Encode once per fan-out and pass the same slice to every Send call: the
// manager never mutates a frame, and neither may the caller afterwards. data
// must be valid JSON; empty or invalid data is sent as null so that a frame is
// always valid JSON. Safe for concurrent use.
func EncodeEvent(id, name string, data json.RawMessage) []byte {
	return EncodeEventAt(id, name, data, EventPosition{})
}

// EncodeEventAt is [EncodeEvent] for an event with a position in its
// history stream: the frame gains "stream", "epoch" and "offset" (none of
// them when pos is zero). The same rules for sharing the frame apply.
func EncodeEventAt(id, name string, data json.RawMessage, pos EventPosition) []byte {
	if len(data) == 0 || !json.Valid(data) {
		data = json.RawMessage("null")
	}
	f := eventFrame{Type: "event", ID: id, Event: name, Data: data}
	if pos.Offset > 0 {
		f.Stream, f.Epoch, f.Offset = pos.Stream, pos.Epoch, pos.Offset
	}
	b, err := json.Marshal(f)
	if err != nil {
		// Unreachable: every field is a string or validated JSON.
		return []byte(`{"type":"event","id":"","event":"","data":null}`)
	}
	return b
}

// EncodeWelcome returns the first frame of every connection:
// {"type":"welcome","conn_id":..,"user_id":..,"instance":..,"ping_interval_ms":..}
// and, from st: "positions":{"user":{"epoch":..,"offset":..},..} when
// st.Positions is not empty, "recovered" when st.Recovered is set, and
// "lost":[..] when st.Lost is not empty. Safe for concurrent use.
func EncodeWelcome(connID, userID, instance string, pingInterval time.Duration, st Start) []byte {
	// Written by hand, not with encoding/json (every handshake encodes
	// one): the bytes are json.Marshal's, which FuzzEncodeWelcome checks.
	b := make([]byte, 0, 112+len(connID)+len(userID)+len(instance)+64*len(st.Positions)+8*len(st.Lost))
	b = append(b, `{"type":"welcome","conn_id":`...)
	b = appendJSONString(b, connID)
	b = append(b, `,"user_id":`...)
	b = appendJSONString(b, userID)
	b = append(b, `,"instance":`...)
	b = appendJSONString(b, instance)
	b = append(b, `,"ping_interval_ms":`...)
	b = strconv.AppendInt(b, pingInterval.Milliseconds(), 10)
	if len(st.Positions) > 0 {
		var buf [2]string // "all" and "user": no allocation for the keys
		keys := buf[:0]
		for k := range st.Positions {
			keys = append(keys, k)
		}
		slices.Sort(keys) // encoding/json's order
		b = append(b, `,"positions":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			p := st.Positions[k]
			b = appendJSONString(b, k)
			b = append(b, `:{"epoch":`...)
			b = appendJSONString(b, p.Epoch)
			b = append(b, `,"offset":`...)
			b = strconv.AppendUint(b, p.Offset, 10)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	if st.Recovered != nil {
		b = append(b, `,"recovered":`...)
		b = strconv.AppendBool(b, *st.Recovered)
	}
	if len(st.Lost) > 0 {
		b = append(b, `,"lost":[`...)
		for i, l := range st.Lost {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, l)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendJSONString appends s as json.Marshal encodes it: as it is when
// every byte is printable ASCII that needs no escape (ids, user ids,
// epochs, stream names), else through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// ClientMessage is a parsed client frame.
type ClientMessage struct {
	// Type is [TypePong] or [TypeMessage].
	Type string
	// ID is the client's id of a message (acks and errors name it): 1 to
	// [MaxClientIDLen] characters of A-Z a-z 0-9 _ . : -, or empty when the
	// client gave none.
	ID string
	// Event is the message's name as the client sent it (any JSON string;
	// the gateway checks it), or empty.
	Event string
	// Data is the raw JSON of the data field: non-null for [TypeMessage],
	// possibly nil for [TypePong]. It is a copy the caller owns.
	Data json.RawMessage
}

// MaxClientIDLen is the longest message id a client may give.
const MaxClientIDLen = 64

// validClientID reports whether id is 1 to MaxClientIDLen characters of
// A-Z a-z 0-9 _ . : - (it is echoed in acks and errors and logged).
func validClientID(id string) bool {
	if id == "" || len(id) > MaxClientIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}

type ackFrame struct {
	Type  string `json:"type"`
	ID    string `json:"id,omitempty"`
	MsgID string `json:"msg_id"`
}

type errorFrame struct {
	Type    string `json:"type"`
	ID      string `json:"id,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// EncodeAck returns {"type":"ack","id":id,"msg_id":msgID}: the client's
// message id was durably queued as msgID. id is omitted when empty.
func EncodeAck(id, msgID string) []byte {
	b, err := json.Marshal(ackFrame{Type: "ack", ID: id, MsgID: msgID})
	if err != nil {
		return []byte(`{"type":"ack"}`) // unreachable: strings only
	}
	return b
}

// EncodeError returns {"type":"error","id":id,"code":code,"message":msg}:
// the client's message id was refused (see docs/PROTOCOL.md for the
// codes). id is omitted when empty.
func EncodeError(id, code, msg string) []byte {
	b, err := json.Marshal(errorFrame{Type: "error", ID: id, Code: code, Message: msg})
	if err != nil {
		return []byte(`{"type":"error"}`) // unreachable: strings only
	}
	return b
}

// ParseClientMessage parses one client text frame strictly: valid UTF-8, a
// JSON object whose only keys are "type", "data", "id" and "event", type
// "pong" or "message", and, for "message", a data field that is present and
// not null, an optional id (see [ClientMessage.ID]) and an optional event
// string. Any other input returns an error wrapping [ErrProtocol]. It never
// panics and is safe for concurrent use.
func ParseClientMessage(b []byte) (ClientMessage, error) {
	// Pongs are almost all the inbound traffic of an idle fleet; the exact
	// frame every client sends skips the JSON decoder.
	if string(b) == pongFrame {
		return ClientMessage{Type: TypePong}, nil
	}
	if !utf8.Valid(b) {
		return ClientMessage{}, fmt.Errorf("%w: invalid utf-8", ErrProtocol)
	}
	trimmed := bytes.TrimLeft(b, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return ClientMessage{}, fmt.Errorf("%w: not a json object", ErrProtocol)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return ClientMessage{}, fmt.Errorf("%w: invalid json", ErrProtocol)
	}
	for k := range fields {
		if k != "type" && k != "data" && k != "id" && k != "event" {
			return ClientMessage{}, fmt.Errorf("%w: unknown field", ErrProtocol)
		}
	}
	rawType, ok := fields["type"]
	if !ok {
		return ClientMessage{}, fmt.Errorf("%w: missing type", ErrProtocol)
	}
	var typ string
	if err := json.Unmarshal(rawType, &typ); err != nil || rawType[0] != '"' {
		return ClientMessage{}, fmt.Errorf("%w: type is not a string", ErrProtocol)
	}
	data := fields["data"]
	switch typ {
	case TypePong:
		return ClientMessage{Type: TypePong, Data: data}, nil
	case TypeMessage:
		if len(data) == 0 || string(data) == "null" {
			return ClientMessage{}, fmt.Errorf("%w: message without data", ErrProtocol)
		}
		msg := ClientMessage{Type: TypeMessage, Data: data}
		if raw, ok := fields["id"]; ok {
			if json.Unmarshal(raw, &msg.ID) != nil || raw[0] != '"' || !validClientID(msg.ID) {
				return ClientMessage{}, fmt.Errorf("%w: id must be 1 to %d characters of A-Z a-z 0-9 _ . : -", ErrProtocol, MaxClientIDLen)
			}
		}
		if raw, ok := fields["event"]; ok {
			if json.Unmarshal(raw, &msg.Event) != nil || raw[0] != '"' {
				return ClientMessage{}, fmt.Errorf("%w: event is not a string", ErrProtocol)
			}
		}
		return msg, nil
	}
	return ClientMessage{}, fmt.Errorf("%w: unknown type", ErrProtocol)
}

// Error codes of {"type":"error"} frames (docs/PROTOCOL.md). The
// connection manager sends ErrCodeRateLimited itself; the gateway the
// others.
const (
	ErrCodeTooLarge    = "too_large"
	ErrCodeRateLimited = "rate_limited"
	ErrCodeQueueFull   = "queue_full"
	ErrCodeUnavailable = "unavailable"
	ErrCodeInvalid     = "invalid"
)
