package inbound

import (
	"encoding/json"
	"fmt"
)

// field is the stream entry field holding a message's JSON.
const field = "m"

// encode is m's form in a stream entry: its JSON without the fields the
// queue sets on read.
func encode(m Message) ([]byte, error) {
	m.ID, m.Deliveries = "", 0
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("inbound: encode message: %w", err)
	}
	return b, nil
}

// decode parses a stream entry's message.
func decode(raw string) (Message, error) {
	var m Message
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return Message{}, fmt.Errorf("%w: %v", errMalformed, err)
	}
	return m, nil
}
