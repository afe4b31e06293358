package webhook

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/sessiongate/sessiongate/inbound"
)

// FuzzVerifySignature: any header, timestamp and body are answered
// without a panic, and what Sign made always verifies.
func FuzzVerifySignature(f *testing.F) {
	f.Add("v1=00", "1700000000", []byte("{}"))
	f.Add("v1=,v1==,=,", "", []byte(nil))
	f.Add("v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163", "1700000000", []byte("{}"))
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, header, ts string, body []byte) {
		_ = VerifySignature([]byte("secret"), header, ts, body, now, 0)
		if err := VerifySignature([]byte("secret"), Sign([]byte("secret"), "1700000000", body), "1700000000", body, now, 0); err != nil {
			t.Fatalf("a signed body does not verify: %v", err)
		}
	})
}

// FuzzResponse: any answer from the application is turned into a result
// without a panic, and a non-2xx never delivers a reply.
func FuzzResponse(f *testing.F) {
	f.Add(200, []byte(`{"reply":{"event":"e","data":{"a":1}}}`), false)
	f.Add(200, []byte(`{"reply":{"event":"","data":[]}}`), false)
	f.Add(200, []byte(`{"reply":`), false)
	f.Add(500, []byte("\xff\x00 boom"), true)
	f.Add(302, []byte(nil), false)
	f.Fuzz(func(t *testing.T, status int, body []byte, tooBig bool) {
		rec, r := newReplier()
		fw := &forwarder{cfg: Config{Timeout: time.Second}, replier: r, log: zap.NewNop()}
		m := testMsg()
		err := fw.handleResponse(context.Background(), m, response{status: status, body: body, tooBig: tooBig})
		replied := len(rec.got) > 0
		if replied && (status < 200 || status > 299 || err != nil) {
			t.Fatalf("status %d, error %v: a reply was delivered", status, err)
		}
		if err != nil && len(err.Error()) > 600 {
			t.Fatalf("error of %d bytes", len(err.Error()))
		}
		_ = inbound.IsPermanent(err)
	})
}
