package pubsub

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func validMessage() Event {
	return Event{Kind: KindMessage, ID: NewEventID(), Origin: "gw-1", Time: time.Unix(1700000000, 0).UTC(),
		Target: &Target{UserID: "alice"}, Name: "chat", Data: json.RawMessage(`{"text":"hi"}`)}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	started := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	tests := []struct {
		name string
		e    Event
	}{
		{"session revoked", Event{Kind: KindSessionRevoked, Origin: "gw-1", Handle: "ab12"}},
		{"user revoked", Event{Kind: KindUserRevoked, Origin: "gw-1", UserID: "alice"}},
		{"user revoked with handles", Event{Kind: KindUserRevoked, Origin: "gw-1", UserID: "alice", Handles: []string{"ab12", "cd34"}}},
		{"message to user", validMessage()},
		{"message to handle", Event{Kind: KindMessage, ID: "1", Origin: "o", Name: "n", Target: &Target{Handle: "h"}}},
		{"message to all", Event{Kind: KindMessage, ID: "1", Origin: "o", Name: "n", Target: &Target{All: true}}},
		{"heartbeat", Event{Kind: KindHeartbeat, Origin: "gw-1", Instance: &InstanceInfo{ID: "gw-1", Addr: ":8080",
			Connections: 3, Sessions: 2, RedisLatencyMS: 0.4, StartedAt: started}}},
		{"draining", Event{Kind: KindDraining, Origin: "gw-1", Instance: &InstanceInfo{ID: "gw-1", Draining: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.e.Encode()
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			if got.V != Version {
				t.Errorf("V = %d, want %d", got.V, Version)
			}
			if got.Time.IsZero() {
				t.Errorf("Time not set by Encode")
			}
			again, err := got.Encode()
			if err != nil {
				t.Fatalf("re-Encode: %v", err)
			}
			if string(again) != string(b) {
				t.Errorf("round trip changed the event:\n%s\n%s", b, again)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	huge := `{"v":1,"kind":"message","id":"1","origin":"o","event":"n","target":{"all":true},"data":"` +
		strings.Repeat("x", MaxEventBytes) + `"}`
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"garbage bytes", "\x00\xff\xfe garbage", ErrMalformed},
		{"json array", `[1,2,3]`, ErrMalformed},
		{"json null", `null`, ErrVersion},
		{"truncated", `{"v":1,"kind":"session.revoked"`, ErrMalformed},
		{"trailing garbage", `{"v":1,"kind":"session.revoked","origin":"o","handle":"h"} x`, ErrMalformed},
		{"wrong field type", `{"v":"1","kind":"session.revoked","origin":"o","handle":"h"}`, ErrMalformed},
		{"missing version", `{"kind":"session.revoked","origin":"o","handle":"h"}`, ErrVersion},
		{"wrong version", `{"v":2,"kind":"session.revoked","origin":"o","handle":"h"}`, ErrVersion},
		{"unknown kind", `{"v":1,"kind":"session.exploded","origin":"o","handle":"h"}`, ErrUnknownKind},
		{"missing kind", `{"v":1,"origin":"o","handle":"h"}`, ErrMalformed},
		{"missing origin", `{"v":1,"kind":"session.revoked","handle":"h"}`, ErrMalformed},
		{"session revoked without handle", `{"v":1,"kind":"session.revoked","origin":"o"}`, ErrMalformed},
		{"user revoked without user", `{"v":1,"kind":"user.revoked","origin":"o"}`, ErrMalformed},
		{"user revoked with an empty handle", `{"v":1,"kind":"user.revoked","origin":"o","user_id":"u","handles":["h",""]}`, ErrMalformed},
		{"user revoked with too many handles", `{"v":1,"kind":"user.revoked","origin":"o","user_id":"u","handles":["h"` +
			strings.Repeat(`,"h"`, MaxRevokedHandles) + `]}`, ErrMalformed},
		{"missing target", `{"v":1,"kind":"message","id":"1","origin":"o","event":"n"}`, ErrMalformed},
		{"empty target", `{"v":1,"kind":"message","id":"1","origin":"o","event":"n","target":{}}`, ErrMalformed},
		{"two targets", `{"v":1,"kind":"message","id":"1","origin":"o","event":"n","target":{"user_id":"a","handle":"h"}}`, ErrMalformed},
		{"three targets", `{"v":1,"kind":"message","id":"1","origin":"o","event":"n","target":{"user_id":"a","handle":"h","all":true}}`, ErrMalformed},
		{"message without name", `{"v":1,"kind":"message","id":"1","origin":"o","target":{"all":true}}`, ErrMalformed},
		{"message without id", `{"v":1,"kind":"message","origin":"o","event":"n","target":{"all":true}}`, ErrMalformed},
		{"heartbeat without instance", `{"v":1,"kind":"instance.heartbeat","origin":"o"}`, ErrMalformed},
		{"draining without instance id", `{"v":1,"kind":"instance.draining","origin":"o","instance":{}}`, ErrMalformed},
		{"huge payload", huge, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Decode error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	tooBig := validMessage()
	tooBig.Data = json.RawMessage(`"` + strings.Repeat("x", MaxEventBytes) + `"`)
	badData := validMessage()
	badData.Data = json.RawMessage(`{not json`)
	twoTargets := validMessage()
	twoTargets.Target = &Target{UserID: "a", All: true}
	tests := []struct {
		name string
		e    Event
		want error
	}{
		{"too large", tooBig, ErrTooLarge},
		{"invalid data", badData, ErrMalformed},
		{"two targets", twoTargets, ErrMalformed},
		{"unknown kind", Event{Kind: "nope", Origin: "o"}, ErrUnknownKind},
		{"no kind", Event{Origin: "o"}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.e.Encode(); !errors.Is(err, tt.want) {
				t.Fatalf("Encode error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewEventID(t *testing.T) {
	seen := make(map[string]bool)
	prev := ""
	for i := 0; i < 1000; i++ {
		id := NewEventID()
		if len(id) != 28 {
			t.Fatalf("len(%q) = %d, want 28", id, len(id))
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
		if prev != "" && id[:12] < prev[:12] {
			t.Fatalf("time prefix went backwards: %q after %q", id, prev)
		}
		prev = id
	}
}

func FuzzDecode(f *testing.F) {
	for _, e := range []Event{
		validMessage(),
		{Kind: KindSessionRevoked, Origin: "o", Handle: "h"},
		{Kind: KindHeartbeat, Origin: "o", Instance: &InstanceInfo{ID: "o"}},
	} {
		b, err := e.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"kind":"message","target":{"user_id":"a","handle":"h"}}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte("\x00\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) &&
				!errors.Is(err, ErrUnknownKind) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Decode returned an unexpected error class: %v", err)
			}
			return
		}
		// Whatever decodes must encode and decode to the same event.
		out, err := e.Encode()
		if errors.Is(err, ErrTooLarge) {
			return // HTML escaping may grow an event that was just under the limit
		}
		if err != nil {
			t.Fatalf("decoded event does not encode: %v", err)
		}
		e2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		out2, err := e2.Encode()
		if err != nil || string(out2) != string(out) {
			t.Fatalf("not stable: %s vs %s (%v)", out, out2, err)
		}
	})
}
