package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/redisconn"
)

// TestAdminSessionsSharedThroughRedis: in Redis mode an admin login made on
// one instance works on another (a console behind a load balancer without
// sticky sessions), a logout on one ends it on all, the session is bound to
// the API key it was made with, and Redis holds a hash of the session id,
// never the cookie's value, with a TTL of the lifetime.
func TestAdminSessionsSharedThroughRedis(t *testing.T) {
	srv := redistest.Start(t)
	const secondKey = "second-admin-key-0123456789"
	start := func(id, keys string) *testGateway {
		rm, err := redisconn.New(redisconn.Config{Addrs: []string{srv.Addr()}}, zaptest.NewLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { rm.Close() })
		if err := rm.Connect(context.Background()); err != nil {
			t.Fatal(err)
		}
		return startGateway(t, gwOptions{rdb: rm.Client(), redis: rm, env: adminEnv(map[string]string{
			"GATEWAY_INSTANCE_ID": id, "GATEWAY_API_KEYS": keys, "ADMIN_SESSION_LIFETIME": "1h", "REDIS_KEY_PREFIX": "sgadm:",
		})})
	}
	a := start("inst-a", testAPIKey+","+secondKey)
	b := start("inst-b", testAPIKey) // secondKey was removed here

	onA := newAdminClient(t, a.http.URL)
	onA.login(testAPIKey)
	onB := newAdminClient(t, b.http.URL)
	onB.cookie, onB.csrf = onA.cookie, onA.csrf
	st, out := onB.call(http.MethodGet, "/admin/api/session", nil)
	if st != http.StatusOK || !strings.Contains(string(out), `"instance":"inst-b"`) {
		t.Fatalf("A's admin session on B: %d %s", st, out)
	}

	rdb := a.srv.d.Redis.Client()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "sgadm:admin:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("admin keys in Redis: %q %v, want 1", keys, err)
	}
	val, err := rdb.Get(ctx, keys[0]).Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(keys[0]+val, onA.cookie.Value) || strings.Contains(keys[0]+val, testAPIKey) {
		t.Fatal("Redis holds the cookie's value or the API key")
	}
	if ttl, err := rdb.TTL(ctx, keys[0]).Result(); err != nil || ttl <= 0 || ttl > time.Hour {
		t.Fatalf("admin session TTL %s %v, want (0, 1h]", ttl, err)
	}

	// Logout on B ends the session on A too.
	if st, out := onB.call(http.MethodPost, "/admin/api/logout", nil); st != http.StatusNoContent {
		t.Fatalf("logout on B: %d %s", st, out)
	}
	if st, _ := onA.call(http.MethodGet, "/admin/api/cluster", nil); st != http.StatusUnauthorized {
		t.Fatalf("A after logout on B: %d, want 401", st)
	}

	// A session made with a key that an instance no longer lists is no
	// session there.
	second := newAdminClient(t, a.http.URL)
	second.login(secondKey)
	if st, _ := second.call(http.MethodGet, "/admin/api/cluster", nil); st != http.StatusOK {
		t.Fatalf("second key's session on A: %d", st)
	}
	onB.cookie, onB.csrf = second.cookie, second.csrf
	if st, _ := onB.call(http.MethodGet, "/admin/api/cluster", nil); st != http.StatusUnauthorized {
		t.Fatalf("second key's session on B, which no longer lists that key: %d, want 401", st)
	}
}
