package session

import (
	"errors"
	"testing"
	"time"
)

func TestSessionExpired(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name      string
		expiresAt time.Time
		want      bool
	}{
		{name: "future", expiresAt: now.Add(time.Second), want: false},
		{name: "exactly now", expiresAt: now, want: true},
		{name: "past", expiresAt: now.Add(-time.Second), want: true},
		{name: "zero fails closed", expiresAt: time.Time{}, want: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := (Session{ExpiresAt: tc.expiresAt}).Expired(now); got != tc.want {
				t.Fatalf("Expired = %v", got)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		ok   bool
	}{
		{name: "zero", ok: true},
		{name: "custom", opts: Options{IdleTTL: time.Hour, Lifetime: time.Minute, TouchInterval: time.Second}, ok: true},
		{name: "negative idle", opts: Options{IdleTTL: -time.Hour}},
		{name: "negative lifetime", opts: Options{Lifetime: -time.Hour}},
		{name: "negative touch", opts: Options{TouchInterval: -time.Second}},
		{name: "touch equals idle", opts: Options{IdleTTL: time.Minute}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.opts.Validate()
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidOptions)) {
				t.Fatalf("Validate = %v", err)
			}
		})
	}
}
