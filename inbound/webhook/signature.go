package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of every request the forwarder makes.
const (
	// HeaderID carries the message's queue id, the idempotency key: the
	// same for every delivery of one message.
	HeaderID = "X-Sessiongate-Id"
	// HeaderTimestamp carries when the request was signed, in Unix
	// seconds (decimal).
	HeaderTimestamp = "X-Sessiongate-Timestamp"
	// HeaderSignature carries "v1=" and the lowercase hex HMAC-SHA256,
	// keyed with the secret, of the timestamp, ".", and the body.
	HeaderSignature = "X-Sessiongate-Signature"
)

// DefaultTolerance is how far from now a timestamp may be when
// [VerifySignature] is given no tolerance.
const DefaultTolerance = 5 * time.Minute

// signatureScheme prefixes a signature; a later scheme gets another name,
// so an application can accept both while it moves.
const signatureScheme = "v1"

// Sign returns the X-Sessiongate-Signature value of body sent with
// timestamp (the X-Sessiongate-Timestamp value) under secret.
func Sign(secret []byte, timestamp string, body []byte) string {
	return signatureScheme + "=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret []byte, timestamp string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(timestamp))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// VerifySignature checks a request the forwarder made, as the application
// received it: header is its X-Sessiongate-Signature, timestamp its
// X-Sessiongate-Timestamp, body the raw body bytes (before any JSON
// decoding). It returns nil when a "v1=" signature in header (a
// comma-separated list, so that a secret can be rotated) matches, and
// timestamp is within tolerance of now (in either direction; 0 means
// [DefaultTolerance]), else an error wrapping [ErrBadTimestamp],
// [ErrBadSignature] or [ErrStaleTimestamp]. The comparison is in constant
// time. Safe for concurrent use.
func VerifySignature(secret []byte, header, timestamp string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := parseTimestamp(timestamp)
	if err != nil {
		return err
	}
	if len(secret) == 0 {
		return fmt.Errorf("%w: no secret to verify with", ErrBadSignature)
	}
	want := mac(secret, timestamp, body)
	ok := false
	for part := range strings.SplitSeq(header, ",") {
		scheme, sig, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found || scheme != signatureScheme {
			continue
		}
		got, err := hex.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			ok = true
		}
	}
	if !ok {
		return ErrBadSignature
	}
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	if age := now.Sub(time.Unix(ts, 0)); age > tolerance || age < -tolerance {
		return fmt.Errorf("%w: signed %s from now (tolerance %s)", ErrStaleTimestamp, age.Round(time.Second), tolerance)
	}
	return nil
}

// parseTimestamp reads decimal Unix seconds: digits only, no sign.
func parseTimestamp(s string) (int64, error) {
	if s == "" || len(s) > 18 || strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, fmt.Errorf("%w: want decimal Unix seconds", ErrBadTimestamp)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: want decimal Unix seconds", ErrBadTimestamp)
	}
	return n, nil
}
