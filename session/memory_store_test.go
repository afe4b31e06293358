package session

import (
	"context"
	"testing"
	"time"
)

func TestMemoryStoreSweepsExpiredSessions(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	m := NewMemoryStore(newTestCodec(t), Options{IdleTTL: time.Minute, TouchInterval: time.Second, Now: clock.Now})
	for range 500 {
		if _, _, err := m.Create(ctx, "alice", nil); err != nil {
			t.Fatal(err)
		}
	}
	clock.Add(2 * time.Minute) // all 500 idle out, nobody reads them
	for range 600 {
		_, s, err := m.Create(ctx, "bob", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Destroy(ctx, s.Handle); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.len(); n != 0 {
		t.Fatalf("%d sessions left after idle expiry and writes, want 0 (no sweep?)", n)
	}
	m.mu.Lock()
	users := len(m.users)
	m.mu.Unlock()
	if users != 0 {
		t.Fatalf("%d user indexes left, want 0", users)
	}
}

func TestNewMemoryStoreRepairsOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want Options
	}{
		{name: "defaults", want: Options{Prefix: DefaultPrefix, IdleTTL: DefaultIdleTTL, Lifetime: DefaultLifetime, TouchInterval: DefaultTouchInterval}},
		{name: "negative", opts: Options{IdleTTL: -1, Lifetime: -1, TouchInterval: -1},
			want: Options{Prefix: DefaultPrefix, IdleTTL: DefaultIdleTTL, Lifetime: DefaultLifetime, TouchInterval: DefaultIdleTTL / 2}},
		{name: "touch too long", opts: Options{IdleTTL: time.Minute, TouchInterval: time.Hour},
			want: Options{Prefix: DefaultPrefix, IdleTTL: time.Minute, Lifetime: DefaultLifetime, TouchInterval: 30 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := NewMemoryStore(newTestCodec(t), tc.opts).opts
			if got.Now == nil {
				t.Fatal("Now not defaulted")
			}
			if got.Prefix != tc.want.Prefix || got.IdleTTL != tc.want.IdleTTL ||
				got.Lifetime != tc.want.Lifetime || got.TouchInterval != tc.want.TouchInterval {
				t.Fatalf("opts = %+v, want %+v", got, tc.want)
			}
		})
	}
}
