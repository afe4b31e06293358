package pubsub

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/history"
)

func messageJSON(t *testing.T) []byte {
	t.Helper()
	b, err := Event{Kind: KindMessage, ID: "e1", Origin: "a", Name: "n", Target: &Target{UserID: "u"}}.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeAny(t *testing.T) {
	msg := messageJSON(t)
	hb, _ := Event{Kind: KindHeartbeat, Origin: "a", Instance: &InstanceInfo{ID: "a"}}.Encode()
	pos := history.Position{Epoch: "00112233445566ff", Offset: 7}
	forged, _ := Event{Kind: KindMessage, ID: "e1", Origin: "a", Name: "n", Target: &Target{UserID: "u"},
		Stream: "user:v", Epoch: "aa", Offset: 99}.Encode()
	tests := []struct {
		name    string
		in      []byte
		want    Event // only the position fields are compared
		wantErr error
	}{
		{name: "plain JSON", in: msg},
		{name: "envelope with a position", in: history.EncodeLive("user:u", pos, msg),
			want: Event{Stream: "user:u", Epoch: pos.Epoch, Offset: 7}},
		{name: "envelope, history off", in: history.EncodeLive("user:u", history.Position{}, msg)},
		{name: "the envelope's position wins over one in the JSON", in: history.EncodeLive("user:u", pos, forged),
			want: Event{Stream: "user:u", Epoch: pos.Epoch, Offset: 7}},
		{name: "envelope around a heartbeat", in: history.EncodeLive("all", pos, hb), wantErr: ErrMalformed},
		{name: "truncated envelope", in: []byte("h1\nuser:u\n"), wantErr: ErrMalformed},
		{name: "envelope around garbage", in: history.EncodeLive("all", pos, []byte("{")), wantErr: ErrMalformed},
		{name: "half a position in JSON", in: []byte(`{"v":1,"kind":"message","id":"e","origin":"a","event":"n","target":{"all":true},"offset":3}`), wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := DecodeAny(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if e.Kind != KindMessage || e.Stream != tt.want.Stream || e.Epoch != tt.want.Epoch || e.Offset != tt.want.Offset {
				t.Fatalf("got %+v, want position %+v", e, tt.want)
			}
		})
	}
}

func FuzzDecodeAny(f *testing.F) {
	f.Add(history.EncodeLive("all", history.Position{Epoch: "ab", Offset: 1}, []byte(`{"v":1}`)))
	f.Add([]byte("h1\n\n\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := DecodeAny(b)
		if err == nil && e.Offset > 0 && (e.Kind != KindMessage || e.Epoch == "" || e.Stream == "") {
			t.Fatalf("accepted %+v", e)
		}
	})
}

// The in-process history hands its envelopes to a LocalBus: the handler
// gets them in order, with their positions.
func TestLocalBusDeliver(t *testing.T) {
	b := NewLocalBus(zaptest.NewLogger(t))
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan Event, 10)
	subscribed := make(chan struct{})
	b.OnSubscribed(func() { close(subscribed) })
	done := make(chan struct{})
	go func() { defer close(done); _ = b.Run(ctx, func(_ context.Context, e Event) { got <- e }) }()
	t.Cleanup(func() { cancel(); <-done })
	<-subscribed
	msg := messageJSON(t)
	b.Deliver([]byte("h1\nbad"))
	for i := uint64(1); i <= 3; i++ {
		b.Deliver(history.EncodeLive("user:u", history.Position{Epoch: "ab", Offset: i}, msg))
	}
	for i := uint64(1); i <= 3; i++ {
		select {
		case e := <-got:
			if e.Offset != i || e.Stream != "user:u" {
				t.Fatalf("event %d: %+v", i, e)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no event")
		}
	}
}
