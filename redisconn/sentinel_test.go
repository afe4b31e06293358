package redisconn_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// Sentinels with a password of their own (requirepass on the sentinels, none
// on the data nodes): the Manager reaches the master only with
// SentinelPassword, and the password shows in no log line, error or Health.
func TestConnectSentinelWithItsOwnPassword(t *testing.T) {
	const pw = "sentinel-horse-battery-staple"
	s := redistest.StartSentinel(t, redistest.SentinelOptions{Replicas: 1, SentinelPassword: pw})
	tests := []struct {
		name    string
		pass    string
		wantErr bool
	}{
		{name: "right sentinel password", pass: pw},
		{name: "wrong sentinel password", pass: "wrong-" + pw, wantErr: true},
		{name: "no sentinel password", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := fastConfig("")
			cfg.Addrs, cfg.MasterName, cfg.SentinelPassword = s.SentinelAddrs(), s.MasterName(), tt.pass
			log, logs := observedLogger(t)
			m := newManager(t, cfg, log)
			err := m.Connect(t.Context())
			if (err != nil) != tt.wantErr {
				t.Fatalf("Connect error = %v, wantErr %v", err, tt.wantErr)
			}
			if !tt.wantErr {
				if err := m.Client().Set(t.Context(), "k", "v", 0).Err(); err != nil {
					t.Fatalf("SET through the master: %v", err)
				}
				if role, err := s.Node(s.Master()).Do("GET k"); err != nil || role != "$1" {
					t.Fatalf("GET k on the master = %q, %v", role, err)
				}
			}
			h := m.Health(t.Context())
			texts := []string{cfg.Redacted(), h.LastError, fmt.Sprint(err)}
			for _, e := range logs.All() {
				texts = append(texts, e.Message)
				for k, v := range e.ContextMap() {
					texts = append(texts, k+"="+fmt.Sprint(v))
				}
			}
			for _, txt := range texts {
				if strings.Contains(txt, pw) {
					t.Fatalf("sentinel password leaked in %q", txt)
				}
			}
		})
	}
}
