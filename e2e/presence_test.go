//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
	"github.com/sessiongate/sessiongate/inbound"
)

type e2ePresence struct {
	UserID      string `json:"user_id"`
	Online      bool   `json:"online"`
	Connections int    `json:"connections"`
	Instances   []struct {
		ID          string `json:"id"`
		Connections int    `json:"connections"`
	} `json:"instances"`
}

// where renders the instances of a presence answer, e.g. "gw1:1 gw3:1".
func (p e2ePresence) where() string {
	var parts []string
	for _, i := range p.Instances {
		parts = append(parts, fmt.Sprintf("%s:%d", i.ID, i.Connections))
	}
	return strings.Join(parts, " ")
}

func (tc *testCluster) presenceOf(g *cluster.Gateway, user string) e2ePresence {
	tc.t.Helper()
	var out e2ePresence
	if code := tc.do(http.MethodGet, g.URL()+"/api/v1/users/"+user+"/presence", tc.apiHeader(), nil, &out); code != http.StatusOK {
		tc.t.Fatalf("presence of %s via %s: HTTP %d", user, g.ID, code)
	}
	return out
}

// aliveIn reports whether g's cluster view has instance id alive.
func (tc *testCluster) aliveIn(g *cluster.Gateway, id string) bool {
	tc.t.Helper()
	var out struct {
		Instances []struct {
			ID    string `json:"id"`
			Alive bool   `json:"alive"`
		} `json:"instances"`
	}
	if code := tc.do(http.MethodGet, g.URL()+"/api/v1/cluster", tc.apiHeader(), nil, &out); code != http.StatusOK {
		tc.t.Fatalf("cluster via %s: HTTP %d", g.ID, code)
	}
	for _, i := range out.Instances {
		if i.ID == id {
			return i.Alive
		}
	}
	return false
}

// presenceEvents reads the inbound queue as the application would (its
// consumer group) and keeps the system messages.
type presenceEvents struct {
	mu  sync.Mutex
	got []string // "user online(reason)"
}

func readPresenceEvents(t *testing.T, tc *testCluster) *presenceEvents {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: tc.Redis.Addr()})
	q := inbound.NewRedis(rdb, inbound.Config{Prefix: "sge2e:"})
	ctx, cancel := context.WithCancel(context.Background())
	if err := q.EnsureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	ev := &presenceEvents{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			ms, err := q.Read(ctx, "e2e-test", 100, 100*time.Millisecond)
			if err != nil {
				continue
			}
			for _, m := range ms {
				if m.System {
					var d struct {
						Reason string `json:"reason"`
						Seq    int64  `json:"seq"`
					}
					_ = json.Unmarshal(m.Data, &d)
					ev.mu.Lock()
					ev.got = append(ev.got, fmt.Sprintf("%s %s(%s)", m.UserID, strings.TrimPrefix(m.Event, "presence."), d.Reason))
					ev.mu.Unlock()
				}
				_ = q.Ack(ctx, m.ID)
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done; rdb.Close() })
	return ev
}

func (e *presenceEvents) of(user string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, s := range e.got {
		if rest, ok := strings.CutPrefix(s, user+" "); ok {
			out = append(out, rest)
		}
	}
	return out
}

// Issue 13: presence across 3 real gateway processes; gw3 killed with -9
// is never reported once the others see it gone (3 missed heartbeats), and
// its purge sends presence.offline through the inbound queue for the users
// no other instance holds, while a user also held elsewhere stays online.
func TestPresenceNoGhostAfterKill(t *testing.T) {
	tc := startCluster(t, cluster.Options{Env: map[string]string{
		"PRESENCE_EVENTS":         "true",
		"PRESENCE_FLUSH_INTERVAL": "20ms",
	}})
	events := readPresenceEvents(t, tc)
	gw1, gw2, gw3 := tc.Gateway("gw1"), tc.Gateway("gw2"), tc.Gateway("gw3")

	alice, bob := tc.createSession("alice"), tc.createSession("bob")
	aliceOn1 := dialWS(t, gw1, alice, "")
	aliceOn1.welcome(t)
	dialWS(t, gw3, alice, "").welcome(t)
	dialWS(t, gw3, bob, "").welcome(t)

	eventually(t, generous, "alice on gw1 and gw3, bob on gw3", func() error {
		for _, g := range []*cluster.Gateway{gw1, gw2} {
			if w := tc.presenceOf(g, "alice").where(); w != "gw1:1 gw3:1" {
				return fmt.Errorf("alice via %s: %q", g.ID, w)
			}
			if w := tc.presenceOf(g, "bob").where(); w != "gw3:1" {
				return fmt.Errorf("bob via %s: %q", g.ID, w)
			}
		}
		return nil
	})
	var page struct {
		Users []struct {
			UserID    string   `json:"user_id"`
			Instances []string `json:"instances"`
		} `json:"users"`
		NextCursor string `json:"next_cursor"`
	}
	if code := tc.do(http.MethodGet, gw2.URL()+"/api/v1/presence?limit=10", tc.apiHeader(), nil, &page); code != 200 ||
		len(page.Users) != 2 || page.Users[0].UserID != "alice" || page.Users[1].UserID != "bob" || page.NextCursor != "" {
		t.Fatalf("presence list: HTTP %d %+v", code, page)
	}
	eventually(t, generous, "online events", func() error {
		if a, b := events.of("alice"), events.of("bob"); !slices.Equal(a, []string{"online(connect)"}) || !slices.Equal(b, []string{"online(connect)"}) {
			return fmt.Errorf("alice %v, bob %v", a, b)
		}
		return nil
	})

	killed := time.Now()
	gw3.Kill()
	eventually(t, generous, "gw1 and gw2 see gw3 gone", func() error {
		if tc.aliveIn(gw1, "gw3") || tc.aliveIn(gw2, "gw3") {
			return fmt.Errorf("gw3 still alive in a view")
		}
		return nil
	})
	t.Logf("gw3 gone in both views %s after kill -9 (heartbeat 500ms, 3 missed beats)", time.Since(killed).Round(time.Millisecond))
	// From here on no ghost, whether or not gw3's records are purged yet.
	for _, g := range []*cluster.Gateway{gw1, gw2} {
		if w := tc.presenceOf(g, "alice").where(); w != "gw1:1" {
			t.Fatalf("alice via %s after gw3 is gone: %q", g.ID, w)
		}
		if p := tc.presenceOf(g, "bob"); p.Online || len(p.Instances) != 0 {
			t.Fatalf("bob via %s after gw3 is gone: %+v", g.ID, p)
		}
	}
	eventually(t, generous, "bob offline through the queue", func() error {
		if b := events.of("bob"); !slices.Equal(b, []string{"online(connect)", "offline(instance gone)"}) {
			return fmt.Errorf("bob %v", b)
		}
		return nil
	})
	t.Logf("bob's offline event %s after kill -9", time.Since(killed).Round(time.Millisecond))
	if a := events.of("alice"); !slices.Equal(a, []string{"online(connect)"}) {
		t.Fatalf("alice (still on gw1): %v", a)
	}

	// alice leaves gw1, her last instance: offline.
	aliceOn1.close()
	eventually(t, generous, "alice offline", func() error {
		if a := events.of("alice"); !slices.Equal(a, []string{"online(connect)", "offline(disconnect)"}) {
			return fmt.Errorf("alice %v", a)
		}
		if p := tc.presenceOf(gw2, "alice"); p.Online {
			return fmt.Errorf("alice still online: %+v", p)
		}
		return nil
	})
}
