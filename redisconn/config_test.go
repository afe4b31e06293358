package redisconn

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap/zaptest"
)

func TestNewBuildsClientType(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "default URL", cfg: Config{}, want: "*redis.Client"},
		{name: "URL", cfg: Config{URL: "redis://:pw@127.0.0.1:6390/2"}, want: "*redis.Client"},
		{name: "TLS URL", cfg: Config{URL: "rediss://example.com:6380"}, want: "*redis.Client"},
		{name: "one addr", cfg: Config{Addrs: []string{"10.0.0.1:6379"}}, want: "*redis.Client"},
		{name: "cluster", cfg: Config{Addrs: []string{"10.0.0.1:7000", "10.0.0.2:7000"}}, want: "*redis.ClusterClient"},
		{name: "sentinel", cfg: Config{Addrs: []string{"10.0.0.1:26379", "10.0.0.2:26379"}, MasterName: "mymaster", DB: 3}, want: "*redis.Client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.cfg, zaptest.NewLogger(t))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { _ = m.Close() })
			got := typeName(m.Client())
			if got != tt.want {
				t.Fatalf("client type = %s, want %s", got, tt.want)
			}
		})
	}
}

func typeName(c redis.UniversalClient) string {
	switch c.(type) {
	case *redis.ClusterClient:
		return "*redis.ClusterClient"
	case *redis.Client:
		return "*redis.Client"
	default:
		return "other"
	}
}

func TestUniversalOptions(t *testing.T) {
	tests := []struct {
		name      string
		cfg       Config
		wantAddrs []string
		wantUser  string
		wantPass  string
		wantDB    int
		wantTLS   bool
	}{
		{name: "URL parts", cfg: Config{URL: "redis://bob:pw@h:6390/4"}, wantAddrs: []string{"h:6390"}, wantUser: "bob", wantPass: "pw", wantDB: 4},
		{name: "overrides win", cfg: Config{URL: "redis://bob:pw@h:6390/4", Username: "al", Password: "x", DB: 7}, wantAddrs: []string{"h:6390"}, wantUser: "al", wantPass: "x", wantDB: 7},
		{name: "rediss enables TLS", cfg: Config{URL: "rediss://h"}, wantAddrs: []string{"h:6379"}, wantTLS: true},
		{name: "addrs ignore URL", cfg: Config{URL: "redis://:pw@h:1/2", Addrs: []string{"a:1", "b:2"}}, wantAddrs: []string{"a:1", "b:2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := tt.cfg.withDefaults().universalOptions()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(o.Addrs, ",") != strings.Join(tt.wantAddrs, ",") || o.Username != tt.wantUser ||
				o.Password != tt.wantPass || o.DB != tt.wantDB || (o.TLSConfig != nil) != tt.wantTLS {
				t.Fatalf("got addrs=%v user=%q pass=%q db=%d tls=%v", o.Addrs, o.Username, o.Password, o.DB, o.TLSConfig != nil)
			}
			if o.DialerRetries != 1 || o.DialTimeout != 2*time.Second {
				t.Fatalf("dialer retries %d, dial timeout %s", o.DialerRetries, o.DialTimeout)
			}
		})
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	const pw = "sup3r-s3cret"
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "bad scheme", cfg: Config{URL: "http://h:6379"}, want: "redis://"},
		{name: "unix scheme", cfg: Config{URL: "unix:///tmp/redis.sock"}, want: "redis://"},
		{name: "bad port keeps password out", cfg: Config{URL: "redis://:" + pw + "@h:notaport/0"}, want: "bad URL"},
		{name: "bad db keeps password out", cfg: Config{URL: "redis://:" + pw + "@h:6379/abc"}, want: "bad URL"},
		{name: "sentinel without addrs", cfg: Config{MasterName: "m"}, want: "Sentinel addresses"},
		{name: "cluster with db", cfg: Config{Addrs: []string{"a:1", "b:2"}, DB: 1}, want: "only db 0"},
		{name: "negative db", cfg: Config{DB: -1}, want: "negative"},
		{name: "attempts", cfg: Config{ConnectAttempts: -1}, want: "connect attempts"},
		{name: "backoff order", cfg: Config{BackoffMin: 5 * time.Second, BackoffMax: time.Second}, want: "backoff"},
		{name: "check interval", cfg: Config{CheckInterval: -time.Second}, want: "check interval"},
		{name: "dial timeout", cfg: Config{DialTimeout: -time.Second}, want: "dial timeout"},
		{name: "bad addr", cfg: Config{Addrs: []string{"a b:1"}}, want: "host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.cfg, zaptest.NewLogger(t))
			if err == nil {
				_ = m.Close()
				t.Fatal("New succeeded, want error")
			}
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), pw) {
				t.Fatalf("error leaks the password: %q", err)
			}
		})
	}
}

func TestRedacted(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{name: "default", cfg: Config{}, want: "redis://localhost:6379/0"},
		{name: "URL password", cfg: Config{URL: "redis://:hunter2@host:6379/0"}, want: "redis://:***@host:6379/0"},
		{name: "URL user and password", cfg: Config{URL: "rediss://bob:hunter2@host/3"}, want: "rediss://bob:***@host:6379/3"},
		{name: "override password", cfg: Config{URL: "redis://host:6380", Password: "hunter2", DB: 2}, want: "redis://:***@host:6380/2"},
		{name: "single addr", cfg: Config{Addrs: []string{"h:1"}, Password: "hunter2"}, want: "redis://:***@h:1/0"},
		{name: "cluster", cfg: Config{Addrs: []string{"a:1", "b:2"}, Username: "u", Password: "hunter2"}, want: "redis-cluster://u:***@a:1,b:2"},
		{name: "sentinel", cfg: Config{Addrs: []string{"a:1", "b:2"}, MasterName: "mm", Password: "hunter2", DB: 1}, want: "redis-sentinel://:***@a:1,b:2/mm/1"},
		{name: "sentinel with its own credentials", cfg: Config{Addrs: []string{"a:1"}, MasterName: "mm", SentinelUsername: "sen", SentinelPassword: "hunter2"}, want: "redis-sentinel://a:1/mm/0"},
		{name: "invalid", cfg: Config{URL: "redis://:hunter2@h:x:y/%zz"}, want: "(invalid redis URL)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cfg.Redacted()
			if got != tt.want {
				t.Fatalf("Redacted() = %q, want %q", got, tt.want)
			}
			if strings.Contains(got, "hunter2") {
				t.Fatalf("Redacted leaks the password: %q", got)
			}
		})
	}
}

func TestStateString(t *testing.T) {
	for st, want := range map[State]string{
		StateConnecting: "connecting", StateConnected: "connected",
		StateReconnecting: "reconnecting", StateDown: "down", State(99): "unknown",
	} {
		if st.String() != want {
			t.Errorf("State(%d).String() = %q, want %q", int(st), st.String(), want)
		}
	}
}
