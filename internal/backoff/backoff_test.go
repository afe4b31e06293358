package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	p := Policy{Min: time.Second, Max: 8 * time.Second}
	for _, tc := range []struct {
		name    string
		attempt int
		want    time.Duration
	}{
		{"zero counts as first", 0, time.Second},
		{"first", 1, time.Second},
		{"second doubles", 2, 2 * time.Second},
		{"fourth", 4, 8 * time.Second},
		{"capped", 40, 8 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Delay(tc.attempt); got != tc.want {
				t.Fatalf("Delay(%d) = %s, want %s", tc.attempt, got, tc.want)
			}
		})
	}
}

func TestJitterStaysInBounds(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: time.Second, Jitter: 0.2}
	seen := map[time.Duration]bool{}
	for attempt := 1; attempt < 8; attempt++ {
		for range 200 {
			d := p.Delay(attempt)
			if d < p.Min || d > p.Max {
				t.Fatalf("Delay(%d) = %s outside [%s, %s]", attempt, d, p.Min, p.Max)
			}
			seen[d] = true
		}
	}
	if len(seen) < 10 {
		t.Fatalf("jitter produced only %d distinct delays", len(seen))
	}
}

func TestMaxBelowMin(t *testing.T) {
	p := Policy{Min: time.Second, Max: time.Millisecond}
	if got := p.Delay(3); got != time.Second {
		t.Fatalf("got %s, want Min when Max < Min", got)
	}
}

func TestJitterWithinTwentyPercent(t *testing.T) {
	p := Policy{Min: 100 * time.Millisecond, Max: time.Second, Jitter: 0.2}
	for _, tt := range []struct {
		name    string
		attempt int
		center  time.Duration
	}{
		{name: "first", attempt: 1, center: 100 * time.Millisecond},
		{name: "second doubles", attempt: 2, center: 200 * time.Millisecond},
		{name: "third doubles", attempt: 3, center: 400 * time.Millisecond},
		{name: "capped", attempt: 10, center: time.Second},
		{name: "huge attempt capped", attempt: 1000, center: time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for range 100 {
				d := p.Delay(tt.attempt)
				if d < tt.center*8/10 || d > tt.center*12/10 {
					t.Fatalf("Delay %s not within 20%% of %s", d, tt.center)
				}
			}
		})
	}
}
