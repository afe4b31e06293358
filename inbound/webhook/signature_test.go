package webhook

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestVerifySignature(t *testing.T) {
	secret := []byte(testSecret)
	now := time.Unix(1_700_000_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	body := []byte(`{"id":"3-1-0","data":{"n":1}}`)
	good := Sign(secret, ts, body)
	tests := []struct {
		name      string
		secret    []byte
		header    string
		timestamp string
		body      []byte
		now       time.Time
		tolerance time.Duration
		want      error // nil: valid
	}{
		{name: "valid", header: good},
		{name: "valid among several (rotation)", header: "v1=" + "00ff, " + good + ",v2=abc"},
		{name: "valid at the edge of the tolerance", now: now.Add(5 * time.Minute)},
		{name: "valid a little in the future", now: now.Add(-30 * time.Second)},
		{name: "tampered body", body: []byte(`{"id":"3-1-0","data":{"n":2}}`), want: ErrBadSignature},
		{name: "tampered timestamp", timestamp: strconv.FormatInt(now.Unix()+1, 10), want: ErrBadSignature},
		{name: "other secret", secret: []byte("another-secret-0123456789abcdef-0"), want: ErrBadSignature},
		{name: "no secret", secret: []byte{}, want: ErrBadSignature},
		{name: "missing header", header: "-", want: ErrBadSignature},
		{name: "unknown scheme", header: "v2=" + good[len("v1="):], want: ErrBadSignature},
		{name: "not hex", header: "v1=zz", want: ErrBadSignature},
		{name: "truncated signature", header: good[:len(good)-2], want: ErrBadSignature},
		{name: "old timestamp, signed correctly", now: now.Add(5*time.Minute + time.Second), want: ErrStaleTimestamp},
		{name: "old timestamp under a custom tolerance", now: now.Add(31 * time.Second), tolerance: 30 * time.Second, want: ErrStaleTimestamp},
		{name: "future timestamp", now: now.Add(-6 * time.Minute), want: ErrStaleTimestamp},
		{name: "empty timestamp", timestamp: "-", want: ErrBadTimestamp},
		{name: "signed timestamp", timestamp: "+" + ts, want: ErrBadTimestamp},
		{name: "fractional timestamp", timestamp: ts + ".5", want: ErrBadTimestamp},
		{name: "milliseconds overflow", timestamp: "99999999999999999999", want: ErrBadTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, h, stamp, b, n := secret, good, ts, body, now
			if tt.secret != nil {
				s = tt.secret
			}
			if tt.header == "-" {
				h = ""
			} else if tt.header != "" {
				h = tt.header
			}
			if tt.timestamp == "-" {
				stamp = ""
			} else if tt.timestamp != "" {
				stamp = tt.timestamp
			}
			if tt.body != nil {
				b = tt.body
			}
			if !tt.now.IsZero() {
				n = tt.now
			}
			err := VerifySignature(s, h, stamp, b, n, tt.tolerance)
			if tt.want == nil && err != nil {
				t.Fatalf("VerifySignature = %v, want nil", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("VerifySignature = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestSignKnownVector pins the scheme so that an application's own
// implementation (docs/INBOUND.md) can be checked against it: HMAC-SHA256
// of "1700000000.{}" under the key "secret", computed independently
// (printf '1700000000.{}' | openssl dgst -sha256 -hmac secret).
func TestSignKnownVector(t *testing.T) {
	const want = "v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
	if got := Sign([]byte("secret"), "1700000000", []byte("{}")); got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
}
