package presence

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// stores runs fn against the memory store and the Redis store on a real
// redis-server.
func stores(t *testing.T, fn func(t *testing.T, s Store)) {
	t.Run("memory", func(t *testing.T) { fn(t, NewMemory(nil)) })
	t.Run("redis", func(t *testing.T) { fn(t, newRedisStore(t, redistest.Start(t))) })
	// A one-node Redis Cluster refuses, like a real one, any command or
	// script that spans two slots (CROSSSLOT).
	t.Run("cluster", func(t *testing.T) {
		rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{startCluster(t).Addr()}})
		t.Cleanup(func() { rdb.Close() })
		fn(t, NewRedis(rdb, RedisConfig{Prefix: "t:"}))
	})
}

// startCluster starts a redis-server in cluster mode that serves every
// slot itself.
func startCluster(t *testing.T) *redistest.Server {
	t.Helper()
	srv := redistest.Start(t, "--cluster-enabled", "yes")
	if r, err := srv.Do("CLUSTER ADDSLOTSRANGE 0 16383"); err != nil || r != "+OK" {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %q, %v", r, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if r, _ := srv.Do("SET probe 1"); r == "+OK" {
			return srv
		}
		if time.Now().After(deadline) {
			t.Fatal("cluster never came up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newRedisStore(t *testing.T, srv *redistest.Server) *Redis {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	t.Cleanup(func() { rdb.Close() })
	return NewRedis(rdb, RedisConfig{Prefix: "t:"})
}

func ch(user string, conns, sessions int) Change {
	return Change{UserID: user, Counts: Counts{Conns: conns, Sessions: sessions}}
}

func mustWrite(t *testing.T, s Store, inst string, cs ...Change) []Transition {
	t.Helper()
	ts, err := s.Write(context.Background(), inst, cs)
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	return ts
}

// kinds renders transitions as "user+" / "user-" for comparison.
func kinds(ts []Transition) []string {
	var out []string
	for _, tr := range ts {
		k := "-"
		if tr.Online {
			k = "+"
		}
		out = append(out, tr.UserID+k)
	}
	return out
}

func TestStoreTransitionsAcrossInstances(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		for _, inst := range []string{"a", "b"} {
			if _, err := s.Replace(ctx, inst, nil); err != nil {
				t.Fatal(err)
			}
		}
		var seqs []int64
		step := func(inst string, c Change, want ...string) {
			t.Helper()
			ts := mustWrite(t, s, inst, c)
			if got := kinds(ts); !slices.Equal(got, want) {
				t.Fatalf("%s writes %+v: transitions %v, want %v", inst, c, got, want)
			}
			for _, tr := range ts {
				seqs = append(seqs, tr.Seq)
			}
		}
		step("a", ch("alice", 1, 1), "alice+")
		step("b", ch("alice", 2, 1))           // already online elsewhere
		step("a", ch("alice", 3, 2))           // a count change is no transition
		step("a", ch("alice", 0, 0))           // b still holds alice
		step("b", ch("alice", 0, 0), "alice-") // the last instance
		step("b", ch("alice", 1, 1), "alice+") // back
		step("b", ch("alice", 0, 0), "alice-")
		if !slices.IsSorted(seqs) || len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
			t.Fatalf("seqs not strictly increasing: %v", seqs)
		}
	})
}

func TestStoreUserAndPurge(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		for _, inst := range []string{"a", "b"} {
			if _, err := s.Replace(ctx, inst, nil); err != nil {
				t.Fatal(err)
			}
		}
		mustWrite(t, s, "a", ch("alice", 2, 1), ch("bob", 1, 1))
		mustWrite(t, s, "b", ch("alice", 1, 1))
		ps, err := s.User(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		want := []Placement{{"a", Counts{2, 1}}, {"b", Counts{1, 1}}}
		if !slices.Equal(ps, want) {
			t.Fatalf("alice: %+v, want %+v", ps, want)
		}
		// a dies: its purge takes bob offline (no other instance) but not
		// alice (b holds her). Purging twice emits nothing more.
		ts, err := s.Purge(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(ts); !slices.Equal(got, []string{"bob-"}) {
			t.Fatalf("purge a: %v, want [bob-]", got)
		}
		if ts[0].Reason != "instance gone" {
			t.Fatalf("reason %q", ts[0].Reason)
		}
		if ts, err := s.Purge(ctx, "a"); err != nil || len(ts) != 0 {
			t.Fatalf("second purge: %v %v", ts, err)
		}
		if ps, _ := s.User(ctx, "alice"); !slices.Equal(ps, want[1:]) {
			t.Fatalf("alice after purge: %+v", ps)
		}
		if ps, _ := s.User(ctx, "bob"); len(ps) != 0 {
			t.Fatalf("bob after purge: %+v", ps)
		}
		// a's records are gone: its next refresh says so.
		if ok, err := s.Refresh(ctx, "a"); err != nil || ok {
			t.Fatalf("refresh of purged a: %v %v, want false", ok, err)
		}
		if ok, err := s.Refresh(ctx, "b"); err != nil || !ok {
			t.Fatalf("refresh of b: %v %v, want true", ok, err)
		}
	})
}

func TestStoreReplaceRestoresAfterPurge(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		if _, err := s.Replace(ctx, "a", nil); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, s, "a", ch("alice", 1, 1), ch("bob", 1, 1))
		if _, err := s.Purge(ctx, "a"); err != nil { // another instance thought a dead
			t.Fatal(err)
		}
		ts, err := s.Replace(ctx, "a", []Change{ch("alice", 1, 1)})
		if err != nil {
			t.Fatal(err)
		}
		if got := kinds(ts); !slices.Equal(got, []string{"alice+"}) {
			t.Fatalf("replace: %v, want [alice+]", got)
		}
		users, next, err := s.Page(ctx, []string{"a"}, "", 10)
		if err != nil || next != "" || len(users) != 1 || users[0].UserID != "alice" {
			t.Fatalf("page: %+v %q %v", users, next, err)
		}
	})
}

func TestStorePageMergesInstances(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		insts := []string{"a", "b", "c"}
		for _, inst := range insts {
			if _, err := s.Replace(ctx, inst, nil); err != nil {
				t.Fatal(err)
			}
		}
		// 25 users, spread so that some are on several instances.
		want := map[string]int{}
		for i := 0; i < 25; i++ {
			u := fmt.Sprintf("u%02d", i)
			for j, inst := range insts {
				if (i+j)%2 == 0 || j == i%3 {
					mustWrite(t, s, inst, ch(u, 1, 1))
					want[u]++
				}
			}
		}
		for _, limit := range []int{1, 4, 7, 25, 100} {
			got := map[string]int{}
			var order []string
			after := ""
			for pages := 0; ; pages++ {
				if pages > 100 {
					t.Fatal("paging does not end")
				}
				users, next, err := s.Page(ctx, insts, after, limit)
				if err != nil {
					t.Fatal(err)
				}
				if len(users) > limit {
					t.Fatalf("limit %d: page of %d", limit, len(users))
				}
				for _, u := range users {
					if _, dup := got[u.UserID]; dup {
						t.Fatalf("limit %d: %s twice", limit, u.UserID)
					}
					got[u.UserID] = len(u.Instances)
					order = append(order, u.UserID)
				}
				if next == "" {
					break
				}
				after = next
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("limit %d: got %v, want %v", limit, got, want)
			}
			if !slices.IsSorted(order) {
				t.Fatalf("limit %d: not in order: %v", limit, order)
			}
		}
		// Only the listed instances are read: a dead instance's users
		// are not reported.
		users, _, _ := s.Page(ctx, []string{"b"}, "", 100)
		for _, u := range users {
			if len(u.Instances) != 1 || u.Instances[0].Instance != "b" {
				t.Fatalf("page of b only: %+v", u)
			}
		}
	})
}

func TestStoreStale(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		if _, err := s.Refresh(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if ids, err := s.Stale(ctx, time.Hour); err != nil || len(ids) != 0 {
			t.Fatalf("stale after an hour: %v %v", ids, err)
		}
		// Poll: the store's clock must move past a 1ms threshold.
		deadline := time.Now().Add(10 * time.Second)
		for {
			ids, err := s.Stale(ctx, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if slices.Equal(ids, []string{"a"}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a never stale: %v", ids)
			}
			time.Sleep(5 * time.Millisecond)
		}
		if _, err := s.Purge(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		if ids, _ := s.Stale(ctx, 0); len(ids) != 0 {
			t.Fatalf("purged a still registered: %v", ids)
		}
	})
}

// Writes of more users than one round trip carries (Redis: writeBatch)
// end in the same state and transitions as small ones: a Replace of 70
// users, then one Write where 50 of them leave, 20 change counts and 50
// new ones arrive.
func TestStoreLargeWrites(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		user := func(i int) string { return fmt.Sprintf("u%03d", i) }
		page := func() map[string]int {
			t.Helper()
			users, next, err := s.Page(ctx, []string{"a"}, "", 200)
			if err != nil || next != "" {
				t.Fatalf("page: next %q, %v", next, err)
			}
			got := map[string]int{}
			for _, u := range users {
				got[u.UserID] = u.Total().Conns
			}
			return got
		}
		var all []Change
		want := map[string]int{}
		for i := range 70 {
			all = append(all, ch(user(i), 1, 1))
			want[user(i)] = 1
		}
		ts, err := s.Replace(ctx, "a", all)
		if err != nil {
			t.Fatal(err)
		}
		if len(ts) != 70 {
			t.Fatalf("replace: %d transitions, want 70", len(ts))
		}
		if got := page(); !maps.Equal(got, want) {
			t.Fatalf("after the replace, page holds %d users, want %d: %v", len(got), len(want), got)
		}
		var changes []Change
		want = map[string]int{}
		for i := range 120 {
			switch {
			case i < 50:
				changes = append(changes, ch(user(i), 0, 0))
			case i < 70:
				changes = append(changes, ch(user(i), 2, 1))
				want[user(i)] = 2
			default:
				changes = append(changes, ch(user(i), 1, 1))
				want[user(i)] = 1
			}
		}
		ts = mustWrite(t, s, "a", changes...)
		var on, off int
		for _, tr := range ts {
			if i, _ := strconv.Atoi(tr.UserID[1:]); tr.Online && i >= 70 {
				on++
			} else if !tr.Online && i < 50 {
				off++
			} else {
				t.Errorf("unexpected transition %+v", tr)
			}
		}
		if on != 50 || off != 50 {
			t.Fatalf("write: %d online and %d offline transitions, want 50 and 50", on, off)
		}
		if got := page(); !maps.Equal(got, want) {
			t.Fatalf("after the write, page holds %d users, want %d: %v", len(got), len(want), got)
		}
	})
}
