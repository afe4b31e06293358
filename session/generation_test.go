package session

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// TestGeneration is the Generation contract on every backend: stable while
// the data set lives, new once it is lost.
func TestGeneration(t *testing.T) {
	t.Run("memory", func(t *testing.T) { runGeneration(t, memoryHarness) })
	t.Run("miniredis", func(t *testing.T) { runGeneration(t, miniredisHarness) })
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		runGeneration(t, realRedisFactory(srv))
	})
}

func mustGeneration(t *testing.T, s Store) string {
	t.Helper()
	g, err := s.Generation(context.Background())
	if err != nil {
		t.Fatalf("Generation: %v", err)
	}
	if len(g) < 16 {
		t.Fatalf("Generation = %q, want a random id", g)
	}
	return g
}

func runGeneration(t *testing.T, newH harnessFactory) {
	ctx := context.Background()
	t.Run("stable", func(t *testing.T) {
		h := newH(t, Options{})
		g := mustGeneration(t, h.store)
		_, s := mustCreate(t, h, "gen", "")
		if _, err := h.store.Destroy(ctx, s.Handle); err != nil {
			t.Fatal(err)
		}
		if again := mustGeneration(t, h.store); again != g {
			t.Fatalf("generation changed from %q to %q with the data set intact", g, again)
		}
	})
	if h := newH(t, Options{}); h.rdb == nil {
		t.Run("memory_per_process", func(t *testing.T) {
			other := NewMemoryStore(newTestCodec(t), Options{})
			if mustGeneration(t, h.store) == mustGeneration(t, other) {
				t.Fatal("two memory stores (two data sets) share a generation")
			}
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := h.store.Generation(cctx); err == nil {
				t.Fatal("Generation ignored a cancelled context")
			}
		})
		return
	}
	t.Run("flushall_changes_it", func(t *testing.T) {
		h := newH(t, Options{})
		g := mustGeneration(t, h.store)
		key := h.opts.Prefix + generationSuffix
		if ttl, err := h.rdb.PTTL(ctx, key).Result(); err != nil || ttl != -1*time.Nanosecond {
			t.Fatalf("PTTL %s = %v, %v; want no TTL (-1)", key, ttl, err)
		}
		if err := h.rdb.FlushAll(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		g2 := mustGeneration(t, h.store)
		if g2 == g {
			t.Fatal("generation survived FLUSHALL")
		}
		if again := mustGeneration(t, h.store); again != g2 {
			t.Fatalf("generation %q then %q", g2, again)
		}
	})
	t.Run("instances_agree", func(t *testing.T) {
		h := newH(t, Options{})
		stores := make([]Store, 8)
		for i := range stores {
			s, err := NewRedisStore(h.rdb, newTestCodec(t), newTestKeyring(t), h.opts)
			if err != nil {
				t.Fatal(err)
			}
			stores[i] = s
		}
		got := make([]string, len(stores))
		var wg sync.WaitGroup
		for i, s := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[i], _ = s.Generation(ctx)
			}()
		}
		wg.Wait()
		for i, g := range got {
			if g == "" || g != got[0] {
				t.Fatalf("store %d saw generation %q, store 0 %q", i, g, got[0])
			}
		}
	})
}
