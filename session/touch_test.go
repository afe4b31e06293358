package session

import (
	"fmt"
	"testing"
	"time"
)

func TestToucherThrottles(t *testing.T) {
	tt := newToucher(time.Minute)
	t0 := time.Now()
	tests := []struct {
		name string
		at   time.Duration
		want bool
	}{
		{name: "first", at: 0, want: true},
		{name: "within interval", at: 30 * time.Second, want: false},
		{name: "just before", at: time.Minute - time.Nanosecond, want: false},
		{name: "after interval", at: time.Minute, want: true},
		{name: "again within", at: 90 * time.Second, want: false},
		{name: "long after", at: time.Hour, want: true},
		{name: "clock went back", at: 0, want: true},
	}
	for _, tc := range tests {
		if got := tt.due("h", t0.Add(tc.at)); got != tc.want {
			t.Fatalf("%s: due = %v, want %v", tc.name, got, tc.want)
		}
	}
	tt.forget("h")
	if !tt.due("h", t0) {
		t.Fatal("due after forget = false")
	}
}

func TestToucherIsBounded(t *testing.T) {
	const max = 64
	tt := newToucher(time.Hour) // nothing ages out: only the size cap bounds it
	tt.max = max
	now := time.Now()
	for i := range 10 * touchShards * max {
		tt.due(fmt.Sprintf("%064x", i), now)
	}
	if n, limit := tt.size(), 2*touchShards*max; n > limit || n < touchShards*max {
		t.Fatalf("toucher holds %d entries, want (%d, %d]", n, touchShards*max, limit)
	}
}

func TestToucherForgetsOldEntries(t *testing.T) {
	tt := newToucher(time.Second)
	now := time.Now()
	for i := range 1000 {
		tt.due(fmt.Sprintf("%064x", i), now)
	}
	// Each shard drops a generation when it is next used an interval
	// later; two such uses drop everything older.
	for _, at := range []time.Duration{2 * time.Second, 4 * time.Second} {
		for i := range touchShards {
			tt.due(fmt.Sprintf("%063x%x", 0xabc, i), now.Add(at))
		}
	}
	if n := tt.size(); n != touchShards {
		t.Fatalf("toucher holds %d entries, want only the %d fresh ones", n, touchShards)
	}
}
