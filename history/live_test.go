package history

import (
	"bytes"
	"errors"
	"testing"
)

func TestLiveRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name   string
		stream string
		pos    Position
		data   string
	}{
		{"event", "user:alice", Position{"0123456789abcdef", 42}, `{"n":1}`},
		{"history off", "all", Position{}, "x"},
		{"empty data", "all", Position{"ab", 1}, ""},
		{"data with newlines", "user:{x}\u00e9", Position{"ab", 18446744073709551615}, "a\nb\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := ParseLive(EncodeLive(tc.stream, tc.pos, []byte(tc.data)))
			if err != nil || l.Stream != tc.stream || l.Position != tc.pos || string(l.Data) != tc.data {
				t.Fatalf("got %+v (%q), %v", l, l.Data, err)
			}
		})
	}
}

func TestParseLiveRefusesMalformed(t *testing.T) {
	for _, tc := range []struct{ name, msg string }{
		{"empty", ""},
		{"a JSON event", `{"v":1,"kind":"message"}`},
		{"other version", "h2\nall\nab\n1\nx"},
		{"truncated", "h1\nall\nab\n1"},
		{"empty stream", "h1\n\nab\n1\nx"},
		{"control in stream", "h1\na\x00\nab\n1\nx"},
		{"uppercase epoch", "h1\nall\nAB\n1\nx"},
		{"long epoch", "h1\nall\n" + string(bytes.Repeat([]byte("a"), 65)) + "\n1\nx"},
		{"offset not a number", "h1\nall\nab\n-1\nx"},
		{"offset with leading zero", "h1\nall\nab\n01\nx"},
		{"offset overflows", "h1\nall\nab\n18446744073709551616\nx"},
		{"epoch without offset", "h1\nall\nab\n0\nx"},
		{"offset without epoch", "h1\nall\n\n3\nx"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if l, err := ParseLive([]byte(tc.msg)); !errors.Is(err, ErrMalformedLive) {
				t.Fatalf("got %+v, %v; want ErrMalformedLive", l, err)
			}
		})
	}
}

// FuzzParseLive: ParseLive never panics, and what it accepts encodes back
// to the same bytes.
func FuzzParseLive(f *testing.F) {
	f.Add([]byte("h1\nuser:alice\n0123456789abcdef\n7\n{}"))
	f.Add([]byte("h1\nall\n\n0\n"))
	f.Add([]byte("h1\n\n\n\n"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		l, err := ParseLive(msg)
		if err != nil {
			return
		}
		if got := EncodeLive(l.Stream, l.Position, l.Data); !bytes.Equal(got, msg) {
			t.Fatalf("re-encoded %q as %q", msg, got)
		}
	})
}
