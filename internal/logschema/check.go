package logschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Kind is the JSON type of a field.
type Kind int

// Field kinds. Durations are numbers (seconds) in zap's JSON encoder; times
// are numbers or RFC 3339 strings depending on the encoder, so [Time]
// accepts both.
const (
	String Kind = iota + 1
	Number
	Bool
	Time
	Object
	Array
	Any
)

func (k Kind) String() string {
	switch k {
	case String:
		return "string"
	case Number:
		return "number"
	case Bool:
		return "bool"
	case Time:
		return "time"
	case Object:
		return "object"
	case Array:
		return "array"
	case Any:
		return "any"
	}
	return "unknown"
}

// Event describes the lines whose message is Msg.
type Event struct {
	// Msg is the event name: the line's "msg".
	Msg string
	// Levels the event may be logged at.
	Levels []string
	// Required fields, beyond the common ones.
	Required map[string]Kind
	// Optional fields.
	Optional map[string]Kind
	// Doc says when the line is written; docs/LOGS.md shows it.
	Doc string
}

// Common are the fields any line may carry: zap's own keys, the instance
// every gateway logger is built with, an error, and the caller/stack zap adds.
var Common = map[string]Kind{
	"level": String, "ts": Time, "logger": String, "msg": String,
	"caller": String, "stacktrace": String,
	"instance": String, "error": String,
}

// Forbidden field names: what may never be logged, whatever its value.
var Forbidden = []string{"password", "token", "cookie", "session_id", "secret", "key", "api_key", "authorization"}

// Check validates one JSON log line against events: it must be one JSON
// object with unique keys, carry level, ts and msg, name a known event at an
// allowed level, hold its required fields, and nothing but common and
// declared fields, each of its declared kind.
func Check(line []byte, events map[string]Event) error {
	obj, err := decodeUnique(line)
	if err != nil {
		return err
	}
	for _, k := range []string{"level", "ts", "msg"} {
		if _, ok := obj[k]; !ok {
			return fmt.Errorf("missing %q", k)
		}
	}
	msg, _ := obj["msg"].(string)
	ev, ok := events[msg]
	if !ok {
		return fmt.Errorf("unknown event %q", msg)
	}
	level, _ := obj["level"].(string)
	if !slices.Contains(ev.Levels, level) {
		return fmt.Errorf("event %q at level %q; allowed %v", msg, level, ev.Levels)
	}
	for name, kind := range ev.Required {
		v, ok := obj[name]
		if !ok {
			return fmt.Errorf("event %q: missing field %q", msg, name)
		}
		if err := checkKind(v, kind); err != nil {
			return fmt.Errorf("event %q: field %q: %w", msg, name, err)
		}
	}
	for name, v := range obj {
		if slices.Contains(Forbidden, strings.ToLower(name)) {
			return fmt.Errorf("event %q: forbidden field %q", msg, name)
		}
		if _, ok := ev.Required[name]; ok {
			continue
		}
		kind, ok := ev.Optional[name]
		if !ok {
			kind, ok = Common[name]
		}
		if !ok {
			return fmt.Errorf("event %q: undeclared field %q", msg, name)
		}
		if err := checkKind(v, kind); err != nil {
			return fmt.Errorf("event %q: field %q: %w", msg, name, err)
		}
	}
	return nil
}

func checkKind(v any, k Kind) error {
	ok := false
	switch k {
	case Any:
		ok = true
	case String:
		_, ok = v.(string)
	case Number:
		_, ok = v.(json.Number)
	case Bool:
		_, ok = v.(bool)
	case Time:
		switch v.(type) {
		case string, json.Number:
			ok = true
		}
	case Object:
		_, ok = v.(map[string]any)
	case Array:
		_, ok = v.([]any)
	}
	if !ok {
		return fmt.Errorf("want %s, got %T", k, v)
	}
	return nil
}

// errDuplicateKey reports a JSON object with a key twice, which
// encoding/json would silently fold into one.
var errDuplicateKey = errors.New("duplicate key")

// decodeUnique decodes one JSON object, refusing duplicate keys at any depth
// and anything after the object.
func decodeUnique(line []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the JSON object")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return obj, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := map[string]any{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				if _, dup := obj[k]; dup {
					return nil, fmt.Errorf("%w %q", errDuplicateKey, k)
				}
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				obj[k] = v
			}
			_, err := dec.Token() // '}'
			return obj, err
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decodeValue(dec)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			_, err := dec.Token() // ']'
			return arr, err
		}
		return nil, fmt.Errorf("unexpected %v", t)
	default:
		return t, nil
	}
}
