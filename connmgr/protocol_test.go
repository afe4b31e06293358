package connmgr

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestParseClientMessage(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantType string
		wantData string
		wantErr  bool
		wantID   string
		wantEv   string
	}{
		{name: "message with id and event", in: `{"type":"message","id":"c-1.x:Z_9","event":"echo","data":{}}`, wantType: TypeMessage, wantData: `{}`, wantID: "c-1.x:Z_9", wantEv: "echo"},
		{name: "id of 64", in: `{"type":"message","id":"` + strings.Repeat("a", 64) + `","data":1}`, wantType: TypeMessage, wantData: `1`, wantID: strings.Repeat("a", 64)},
		{name: "id of 65", in: `{"type":"message","id":"` + strings.Repeat("a", 65) + `","data":1}`, wantErr: true},
		{name: "empty id", in: `{"type":"message","id":"","data":1}`, wantErr: true},
		{name: "id with a space", in: `{"type":"message","id":"a b","data":1}`, wantErr: true},
		{name: "id with a quote", in: `{"type":"message","id":"a\"b","data":1}`, wantErr: true},
		{name: "id not a string", in: `{"type":"message","id":7,"data":1}`, wantErr: true},
		{name: "event not a string", in: `{"type":"message","event":["x"],"data":1}`, wantErr: true},
		{name: "event any string", in: `{"type":"message","event":"\u0000","data":1}`, wantType: TypeMessage, wantData: `1`, wantEv: "\x00"},
		{name: "pong", in: `{"type":"pong"}`, wantType: TypePong},
		{name: "pong with spaces", in: " \n{ \"type\" : \"pong\" }\n", wantType: TypePong},
		{name: "message object", in: `{"type":"message","data":{"a":[1,2]}}`, wantType: TypeMessage, wantData: `{"a":[1,2]}`},
		{name: "message string", in: `{"data":"hi","type":"message"}`, wantType: TypeMessage, wantData: `"hi"`},
		{name: "message false", in: `{"type":"message","data":false}`, wantType: TypeMessage, wantData: `false`},
		{name: "message without data", in: `{"type":"message"}`, wantErr: true},
		{name: "message null data", in: `{"type":"message","data":null}`, wantErr: true},
		{name: "unknown type", in: `{"type":"ping"}`, wantErr: true},
		{name: "type case", in: `{"type":"PONG"}`, wantErr: true},
		{name: "key case", in: `{"Type":"pong"}`, wantErr: true},
		{name: "type not string", in: `{"type":1}`, wantErr: true},
		{name: "type null", in: `{"type":null}`, wantErr: true},
		{name: "missing type", in: `{"data":{}}`, wantErr: true},
		{name: "unknown field", in: `{"type":"pong","extra":1}`, wantErr: true},
		{name: "array", in: `[{"type":"pong"}]`, wantErr: true},
		{name: "null", in: `null`, wantErr: true},
		{name: "string", in: `"pong"`, wantErr: true},
		{name: "empty", in: ``, wantErr: true},
		{name: "truncated", in: `{"type":"pong"`, wantErr: true},
		{name: "trailing garbage", in: `{"type":"pong"}x`, wantErr: true},
		{name: "invalid utf8", in: "{\"type\":\"message\",\"data\":\"\xff\"}", wantErr: true},
		{name: "invalid json data", in: `{"type":"message","data":{a}}`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg, err := ParseClientMessage([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrProtocol) {
					t.Fatalf("err = %v, want ErrProtocol", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if msg.Type != tt.wantType || string(msg.Data) != tt.wantData || msg.ID != tt.wantID ||
				msg.Event != tt.wantEv {
				t.Fatalf("got %+v, want {%q %s id=%q event=%q}", msg, tt.wantType, tt.wantData, tt.wantID, tt.wantEv)
			}
		})
	}
}

func FuzzParseClientMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"pong"}`,
		`{"type":"message","data":{"x":1}}`,
		`{"type":"message","id":"a-1","event":"echo","data":{"x":1}}`,
		`{"type":"message","id":"a b","data":1}`,
		`{"type":"message","data":null}`,
		`{"type":"message"}`,
		`{"type":"pong","type":"message","data":1}`,
		`[]`, `null`, `{`, "\xff", `{"type":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := ParseClientMessage(b)
		if err != nil {
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		if !utf8.Valid(b) || !json.Valid(b) {
			t.Fatalf("accepted invalid input %q", b)
		}
		switch msg.Type {
		case TypePong:
		case TypeMessage:
			if len(msg.Data) == 0 || string(msg.Data) == "null" || !json.Valid(msg.Data) {
				t.Fatalf("message with bad data %q", msg.Data)
			}
		default:
			t.Fatalf("accepted type %q", msg.Type)
		}
	})
}

func TestEncodeEvent(t *testing.T) {
	tests := []struct {
		name     string
		id, ev   string
		data     string
		wantData string
	}{
		{name: "object", id: "e1", ev: "chat", data: `{"a":1}`, wantData: `{"a":1}`},
		{name: "escaping", id: "\"<&>\n", ev: "ünï\u2028", data: `"x"`, wantData: `"x"`},
		{name: "empty data", id: "e2", ev: "x", data: ``, wantData: `null`},
		{name: "invalid data", id: "e3", ev: "x", data: `{nope`, wantData: `null`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := EncodeEvent(tt.id, tt.ev, json.RawMessage(tt.data))
			var f frame
			if err := json.Unmarshal(b, &f); err != nil {
				t.Fatalf("invalid JSON %s: %v", b, err)
			}
			if f.Type != "event" || f.ID != tt.id || f.Event != tt.ev || string(f.Data) != tt.wantData {
				t.Fatalf("round trip of %s = %+v", b, f)
			}
		})
	}
}

func FuzzEncodeEvent(f *testing.F) {
	f.Add("id", "name", []byte(`{"a":1}`))
	f.Add("\xff", "\x00", []byte(`nul`))
	f.Fuzz(func(t *testing.T, id, name string, data []byte) {
		b := EncodeEvent(id, name, data)
		if !json.Valid(b) {
			t.Fatalf("invalid frame %q", b)
		}
		var fr frame
		if err := json.Unmarshal(b, &fr); err != nil {
			t.Fatal(err)
		}
		if utf8.ValidString(id) && fr.ID != id {
			t.Fatalf("id %q came back as %q", id, fr.ID)
		}
		if utf8.ValidString(name) && fr.Event != name {
			t.Fatalf("event %q came back as %q", name, fr.Event)
		}
	})
}

func TestEncodeWelcome(t *testing.T) {
	b := EncodeWelcome("c1", "alice", "gw-1", 25*time.Second, Start{})
	want := `{"type":"welcome","conn_id":"c1","user_id":"alice","instance":"gw-1","ping_interval_ms":25000}`
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
	b = EncodeWelcome("c1", "alice", "gw-1", time.Second, Start{Positions: map[string]StreamPosition{
		"user": {Epoch: "00112233445566ff", Offset: 7}, "all": {Epoch: "ffeeddccbbaa0099", Offset: 0},
	}})
	want = `{"type":"welcome","conn_id":"c1","user_id":"alice","instance":"gw-1","ping_interval_ms":1000,` +
		`"positions":{"all":{"epoch":"ffeeddccbbaa0099","offset":0},"user":{"epoch":"00112233445566ff","offset":7}}}`
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
	for _, tc := range []struct {
		recovered bool
		lost      []string
		want      string
	}{
		{true, nil, `"recovered":true}`},
		{false, []string{"all"}, `"recovered":false,"lost":["all"]}`},
	} {
		b = EncodeWelcome("c1", "alice", "gw-1", time.Second, Start{Recovered: &tc.recovered, Lost: tc.lost})
		want = `{"type":"welcome","conn_id":"c1","user_id":"alice","instance":"gw-1","ping_interval_ms":1000,` + tc.want
		if string(b) != want {
			t.Fatalf("got %s\nwant %s", b, want)
		}
	}
}

// welcomeJSON is the welcome as encoding/json writes it: EncodeWelcome
// must write the same bytes.
type welcomeJSON struct {
	Type           string                    `json:"type"`
	ConnID         string                    `json:"conn_id"`
	UserID         string                    `json:"user_id"`
	Instance       string                    `json:"instance"`
	PingIntervalMS int64                     `json:"ping_interval_ms"`
	Positions      map[string]StreamPosition `json:"positions,omitempty"`
	Recovered      *bool                     `json:"recovered,omitempty"`
	Lost           []string                  `json:"lost,omitempty"`
}

func welcomeByJSON(connID, userID, instance string, ping time.Duration, st Start) []byte {
	b, err := json.Marshal(welcomeJSON{Type: "welcome", ConnID: connID, UserID: userID, Instance: instance,
		PingIntervalMS: ping.Milliseconds(), Positions: st.Positions, Recovered: st.Recovered, Lost: st.Lost})
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzEncodeWelcome: the hand-written welcome is byte for byte what
// encoding/json writes, for any strings (escapes, invalid UTF-8), any
// number of positions and lost streams, and each recovered state.
func FuzzEncodeWelcome(f *testing.F) {
	f.Add("c1", "alice", "gw-1", int64(25000), "user", "00112233445566ff", uint64(7), "all", "ffeeddccbbaa0099", uint64(0), int8(-1), "", 0)
	f.Add("c\"1", "<b>&\u2028", "\xff\x00", int64(-1), "\n", "\xc3", uint64(1<<63), "", "", uint64(0), int8(1), "all", 2)
	f.Add("", "", "", int64(0), "b", "e", uint64(1), "a", "e", uint64(2), int8(0), "user", 1)
	f.Add("<", ">", "&", int64(1), "\u2028", "\x7f", uint64(3), "\t", "\\", uint64(4), int8(1), "<", 1)
	f.Fuzz(func(t *testing.T, connID, userID, instance string, ms int64, k1, e1 string, o1 uint64, k2, e2 string, o2 uint64, recovered int8, lost string, nlost int) {
		var st Start
		if k1 != "" || k2 != "" {
			st.Positions = map[string]StreamPosition{k1: {Epoch: e1, Offset: o1}, k2: {Epoch: e2, Offset: o2}}
		}
		if recovered >= 0 {
			r := recovered > 0
			st.Recovered = &r
		}
		for range min(max(nlost, 0), 3) {
			st.Lost = append(st.Lost, lost)
		}
		ping := time.Duration(ms) * time.Millisecond
		got, want := EncodeWelcome(connID, userID, instance, ping, st), welcomeByJSON(connID, userID, instance, ping, st)
		if !bytes.Equal(got, want) {
			t.Fatalf("got  %s\nwant %s", got, want)
		}
	})
}

// BenchmarkEncodeWelcome: a resumable connection's welcome (two stream
// positions), written by hand and by encoding/json.
func BenchmarkEncodeWelcome(b *testing.B) {
	st := Start{Positions: map[string]StreamPosition{
		"user": {Epoch: "00112233445566ff", Offset: 7}, "all": {Epoch: "ffeeddccbbaa0099", Offset: 120},
	}}
	for _, v := range []struct {
		name string
		enc  func(string, string, string, time.Duration, Start) []byte
	}{{"direct", EncodeWelcome}, {"json", welcomeByJSON}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v.enc("c0123456789abcdef01234", "u-000001", "gw-1", 25*time.Second, st)
			}
		})
	}
}

func TestEncodeEventAt(t *testing.T) {
	b := EncodeEventAt("e1", "chat", json.RawMessage(`{"a":1}`), EventPosition{Stream: "user", StreamPosition: StreamPosition{Epoch: "00112233445566ff", Offset: 42}})
	want := `{"type":"event","id":"e1","event":"chat","data":{"a":1},"stream":"user","epoch":"00112233445566ff","offset":42}`
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
	if b, want := EncodeEventAt("e1", "chat", nil, EventPosition{}), `{"type":"event","id":"e1","event":"chat","data":null}`; string(b) != want {
		t.Fatalf("without a position: got %s, want %s", b, want)
	}
}

// The reader parses messages out of a pooled buffer that the next message
// overwrites, so nothing ParseClientMessage returns may alias its input.
func TestParseClientMessageKeepsNoInput(t *testing.T) {
	in := []byte(`{"type":"message","id":"m1","event":"ev","data":{"k":"v"}}`)
	msg, err := ParseClientMessage(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 'x'
	}
	if string(msg.Data) != `{"k":"v"}` || msg.ID != "m1" || msg.Event != "ev" {
		t.Fatalf("message changed with its input: %+v", msg)
	}
}
