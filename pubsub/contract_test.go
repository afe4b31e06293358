package pubsub

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// TestBusContract runs the behaviour every Bus promises against each one.
func TestBusContract(t *testing.T) {
	buses := []struct {
		name string
		new  func(t *testing.T) callbackBus
	}{
		{"local", func(t *testing.T) callbackBus { return NewLocalBus(zaptest.NewLogger(t)) }},
		{"redis", func(t *testing.T) callbackBus {
			return newRedisBusT(t, redistest.Start(t), RedisConfig{})
		}},
	}
	for _, bb := range buses {
		t.Run(bb.name, func(t *testing.T) {
			t.Run("own events are delivered", func(t *testing.T) {
				bus := bb.new(t)
				r := startRecorded(t, bus)
				want := msg(1)
				if err := bus.Publish(context.Background(), want); err != nil {
					t.Fatal(err)
				}
				got := r.next(t, 1)
				if got.ID != want.ID || got.Origin != want.Origin || got.Target == nil || !got.Target.All ||
					got.V != Version || got.Time.IsZero() {
					t.Fatalf("got %+v, want %+v", got, want)
				}
			})
			t.Run("order is kept", func(t *testing.T) {
				bus := bb.new(t)
				r := startRecorded(t, bus)
				const n = 500
				for i := 0; i < n; i++ {
					if err := bus.Publish(context.Background(), msg(i)); err != nil {
						t.Fatal(err)
					}
				}
				for i := 0; i < n; i++ {
					select {
					case e := <-r.events:
						if got := seq(e); got != i {
							t.Fatalf("event %d arrived as %d", i, got)
						}
					case <-time.After(waitFor):
						t.Fatalf("event %d not received", i)
					}
				}
			})
			t.Run("invalid events are refused by Publish", func(t *testing.T) {
				bus := bb.new(t)
				bad := msg(1)
				bad.Target = nil
				if err := bus.Publish(context.Background(), bad); !errors.Is(err, ErrMalformed) {
					t.Fatalf("Publish error = %v, want ErrMalformed", err)
				}
				if err := bus.Publish(context.Background(), Event{Kind: "x", Origin: "o"}); !errors.Is(err, ErrUnknownKind) {
					t.Fatalf("Publish error = %v, want ErrUnknownKind", err)
				}
			})
			t.Run("second Run is refused", func(t *testing.T) {
				bus := bb.new(t)
				startRecorded(t, bus)
				if err := bus.Run(context.Background(), func(context.Context, Event) {}); !errors.Is(err, ErrAlreadyRunning) {
					t.Fatalf("second Run = %v, want ErrAlreadyRunning", err)
				}
			})
			t.Run("Run returns on cancel and can run again", func(t *testing.T) {
				bus := bb.new(t)
				r := newRecorder()
				bus.OnSubscribed(func() { r.add("subscribed") })
				stop := runBus(t, bus, r.handle)
				eventually(t, "subscription", func() bool { return r.count("subscribed") == 1 })
				stop()
				runBus(t, bus, r.handle)
				eventually(t, "second subscription", func() bool { return r.count("subscribed") == 2 })
				if err := bus.Publish(context.Background(), msg(7)); err != nil {
					t.Fatal(err)
				}
				r.next(t, 7)
			})
		})
	}
}
