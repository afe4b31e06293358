package session

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// TestContract runs one behaviour suite against every Store backend:
// go test ./session/... -run Contract -v shows memory, miniredis, redis and
// redis-cluster (three masters: a user's index and their sessions land on
// different masters).
func TestContract(t *testing.T) {
	t.Run("memory", func(t *testing.T) { runContract(t, memoryHarness) })
	t.Run("miniredis", func(t *testing.T) { runContract(t, miniredisHarness) })
	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		runContract(t, realRedisFactory(srv))
	})
	t.Run("redis-cluster", func(t *testing.T) {
		c := redistest.StartCluster(t, redistest.ClusterOptions{Masters: 3})
		runContract(t, realClusterFactory(c))
	})
}

func mustCreate(t *testing.T, h *harness, user, data string) (string, Session) {
	t.Helper()
	tok, s, err := h.store.Create(context.Background(), user, json.RawMessage(data))
	if err != nil {
		t.Fatalf("Create(%q): %v", user, err)
	}
	return tok, s
}

func mustGet(t *testing.T, h *harness, handle string, want bool) Session {
	t.Helper()
	s, ok, err := h.store.Get(context.Background(), handle)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if ok != want {
		t.Fatalf("Get: ok=%v, want %v", ok, want)
	}
	return s
}

func mustLoad(t *testing.T, h *harness, handle string, want bool) Session {
	t.Helper()
	s, ok, err := h.store.Load(context.Background(), handle)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if ok != want {
		t.Fatalf("Load: ok=%v, want %v", ok, want)
	}
	return s
}

func jsonEqual(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	if len(got) == 0 && want == "" {
		return
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("data %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want %q: %v", want, err)
	}
	if fmt.Sprint(g) != fmt.Sprint(w) {
		t.Fatalf("data = %s, want %s", got, want)
	}
}

func sameSession(t *testing.T, got, want Session) {
	t.Helper()
	if got.Handle != want.Handle || got.UserID != want.UserID || !bytes.Equal(got.Data, want.Data) ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.AuthAt.Equal(want.AuthAt) || !got.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("session = %+v, want %+v", got, want)
	}
}

func runContract(t *testing.T, newH harnessFactory) {
	ctx := context.Background()

	t.Run("create_get", func(t *testing.T) {
		h := newH(t, Options{})
		tok, s, err := h.store.Create(ctx, "alice", json.RawMessage(` {"theme": "dark", "n": 1} `))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		handle, err := h.codec.Parse(tok)
		if err != nil || handle != s.Handle || !ValidHandle(handle) {
			t.Fatalf("Parse(token) = %q, %v; session handle %q", handle, err, s.Handle)
		}
		if s.UserID != "alice" || !s.CreatedAt.Equal(s.AuthAt) || !s.ExpiresAt.Equal(s.CreatedAt.Add(h.opts.Lifetime)) {
			t.Fatalf("created session = %+v", s)
		}
		if !s.CreatedAt.Equal(h.clock.Now()) {
			t.Fatalf("CreatedAt = %v, want store clock %v", s.CreatedAt, h.clock.Now())
		}
		jsonEqual(t, s.Data, `{"theme":"dark","n":1}`)
		got := mustGet(t, h, s.Handle, true)
		sameSession(t, got, s)
		if ttl := h.ttl(t, s.Handle); ttl <= 0 || ttl > h.opts.IdleTTL {
			t.Fatalf("idle TTL after create = %v, want (0, %v]", ttl, h.opts.IdleTTL)
		}
		// The caller owns what it gets: scribbling on it changes nothing.
		got.Data[0] = 'X'
		sameSession(t, mustGet(t, h, s.Handle, true), s)

		_, other, _ := newTestCodec(t).New()
		mustGet(t, h, other, false)
		mustGet(t, h, "not-a-handle", false)
		mustLoad(t, h, strings.ToUpper(s.Handle), false)
	})

	t.Run("create_empty_data", func(t *testing.T) {
		h := newH(t, Options{})
		for _, d := range []string{"", "null", "  "} {
			_, s := mustCreate(t, h, "bob", d)
			if got := mustGet(t, h, s.Handle, true); got.Data != nil {
				t.Fatalf("data %q stored as %q, want none", d, got.Data)
			}
		}
	})

	t.Run("create_rejects_bad_input", func(t *testing.T) {
		h := newH(t, Options{})
		tests := []struct {
			name, user, data string
			want             error
		}{
			{name: "empty user", user: "", want: ErrInvalidUser},
			{name: "long user", user: strings.Repeat("u", MaxUserIDLen+1), want: ErrInvalidUser},
			{name: "newline in user", user: "a\nb", want: ErrInvalidUser},
			{name: "nul in user", user: "a\x00", want: ErrInvalidUser},
			{name: "bad utf8 user", user: "a\xff", want: ErrInvalidUser},
			{name: "array data", user: "u", data: `[1]`, want: ErrInvalidData},
			{name: "string data", user: "u", data: `"x"`, want: ErrInvalidData},
			{name: "number data", user: "u", data: `12`, want: ErrInvalidData},
			{name: "broken json", user: "u", data: `{"a":`, want: ErrInvalidData},
			{name: "trailing garbage", user: "u", data: `{} x`, want: ErrInvalidData},
			{name: "too big", user: "u", data: `{"a":"` + strings.Repeat("x", MaxDataLen) + `"}`, want: ErrInvalidData},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				tok, _, err := h.store.Create(ctx, tc.user, json.RawMessage(tc.data))
				if !errors.Is(err, tc.want) || tok != "" {
					t.Fatalf("Create = %q, %v; want %v", tok, err, tc.want)
				}
			})
		}
		if _, s := mustCreate(t, h, strings.Repeat("u", MaxUserIDLen), ""); s.UserID == "" {
			t.Fatal("longest valid user id rejected")
		}
		mustCreate(t, h, "élodie@example.com {tag}", `{}`)
	})

	t.Run("update", func(t *testing.T) {
		h := newH(t, Options{})
		_, s := mustCreate(t, h, "alice", `{"a":1}`)
		h.setTTL(t, s.Handle, 100*time.Second)
		h.clock.Add(time.Minute)
		s.Data = json.RawMessage(`{"a":2,"b":[1,2]}`)
		s.AuthAt = h.clock.Now()
		if err := h.store.Update(ctx, s); err != nil {
			t.Fatalf("Update: %v", err)
		}
		got := mustGet(t, h, s.Handle, true)
		jsonEqual(t, got.Data, `{"a":2,"b":[1,2]}`)
		if !got.AuthAt.Equal(s.AuthAt) || !got.CreatedAt.Equal(s.CreatedAt) {
			t.Fatalf("after update: %+v", got)
		}
		if ttl := h.ttl(t, s.Handle); ttl <= 0 || ttl > 100*time.Second {
			t.Fatalf("Update changed the idle TTL: %v, want <= 100s", ttl)
		}
		s.Data = json.RawMessage(`[1]`)
		if err := h.store.Update(ctx, s); !errors.Is(err, ErrInvalidData) {
			t.Fatalf("Update with array data: %v", err)
		}
		s.Data = nil
		handBuilt := Session{Handle: s.Handle, UserID: s.UserID}
		if err := h.store.Update(ctx, handBuilt); !errors.Is(err, ErrInvalidData) {
			t.Fatalf("Update of a hand-built session = %v, want ErrInvalidData", err)
		}
		mustGet(t, h, s.Handle, true)
		s.Handle = "bogus"
		if err := h.store.Update(ctx, s); !errors.Is(err, ErrInvalidHandle) {
			t.Fatalf("Update with bad handle: %v", err)
		}
	})

	t.Run("update_after_destroy_is_not_written_back", func(t *testing.T) {
		h := newH(t, Options{})
		_, s := mustCreate(t, h, "alice", `{"a":1}`)
		ok, err := h.store.Destroy(ctx, s.Handle)
		if err != nil || !ok {
			t.Fatalf("Destroy = %v, %v", ok, err)
		}
		if err := h.store.Update(ctx, s); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Update after Destroy = %v, want ErrNotFound", err)
		}
		mustGet(t, h, s.Handle, false)
		if ttl := h.ttl(t, s.Handle); ttl > 0 {
			t.Fatalf("destroyed session is back with TTL %v", ttl)
		}
		if ok, err := h.store.Destroy(ctx, s.Handle); err != nil || ok {
			t.Fatalf("second Destroy = %v, %v; want false", ok, err)
		}
		if ok, err := h.store.Destroy(ctx, "nope"); err != nil || ok {
			t.Fatalf("Destroy(invalid) = %v, %v", ok, err)
		}
	})

	t.Run("destroy_updates_index", func(t *testing.T) {
		h := newH(t, Options{})
		_, a := mustCreate(t, h, "alice", "")
		_, b := mustCreate(t, h, "alice", "")
		if ok, err := h.store.Destroy(ctx, a.Handle); err != nil || !ok {
			t.Fatalf("Destroy = %v, %v", ok, err)
		}
		if got := h.members(t, "alice"); !slices.Equal(got, []string{b.Handle}) {
			t.Fatalf("index after destroy = %v, want [%s]", got, b.Handle)
		}
	})

	t.Run("destroy_user", func(t *testing.T) {
		h := newH(t, Options{})
		var want []string
		for range 3 {
			_, s := mustCreate(t, h, "alice", "")
			want = append(want, s.Handle)
		}
		_, bob := mustCreate(t, h, "bob", "")
		slices.Sort(want)
		got, err := h.store.DestroyUser(ctx, "alice")
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("DestroyUser = %v, %v; want %v", got, err, want)
		}
		for _, hd := range want {
			mustGet(t, h, hd, false)
		}
		mustGet(t, h, bob.Handle, true)
		if l, err := h.store.ListUser(ctx, "alice"); err != nil || len(l) != 0 {
			t.Fatalf("ListUser after DestroyUser = %v, %v", l, err)
		}
		if got, err := h.store.DestroyUser(ctx, "alice"); err != nil || len(got) != 0 {
			t.Fatalf("second DestroyUser = %v, %v", got, err)
		}
		if _, err := h.store.DestroyUser(ctx, ""); !errors.Is(err, ErrInvalidUser) {
			t.Fatalf("DestroyUser(\"\") = %v", err)
		}
	})

	t.Run("list_user", func(t *testing.T) {
		h := newH(t, Options{})
		_, a := mustCreate(t, h, "alice", `{"n":1}`)
		h.clock.Add(time.Second)
		_, b := mustCreate(t, h, "alice", `{"n":2}`)
		mustCreate(t, h, "bob", "")
		got, err := h.store.ListUser(ctx, "alice")
		if err != nil || len(got) != 2 {
			t.Fatalf("ListUser = %v, %v", got, err)
		}
		sameSession(t, got[0], a)
		sameSession(t, got[1], b)
		if got, err := h.store.ListUser(ctx, "carol"); err != nil || len(got) != 0 {
			t.Fatalf("ListUser(unknown) = %v, %v", got, err)
		}
		if _, err := h.store.ListUser(ctx, "a\x01"); !errors.Is(err, ErrInvalidUser) {
			t.Fatalf("ListUser(bad) = %v", err)
		}
	})

	t.Run("list_user_prunes_dangling", func(t *testing.T) {
		h := newH(t, Options{})
		_, a := mustCreate(t, h, "alice", "")
		_, b := mustCreate(t, h, "alice", "")
		h.dropKey(t, a.Handle)
		if got := h.members(t, "alice"); len(got) != 2 {
			t.Fatalf("index before prune = %v, want 2 members", got)
		}
		got, err := h.store.ListUser(ctx, "alice")
		if err != nil || len(got) != 1 || got[0].Handle != b.Handle {
			t.Fatalf("ListUser = %v, %v; want only %s", got, err, b.Handle)
		}
		if got := h.members(t, "alice"); !slices.Equal(got, []string{b.Handle}) {
			t.Fatalf("index after prune = %v, want [%s]", got, b.Handle)
		}
	})

	t.Run("indexed", func(t *testing.T) {
		h := newH(t, Options{})
		_, a := mustCreate(t, h, "alice", "")
		_, b := mustCreate(t, h, "alice", "")
		_, c := mustCreate(t, h, "bob", "")
		_, d := mustCreate(t, h, "bob", "")
		h.unindex(t, "alice", b.Handle) // a failover lost b's index entry
		if _, err := h.store.Destroy(ctx, d.Handle); err != nil {
			t.Fatal(err)
		}
		refs := []IndexRef{
			{UserID: "alice", Handle: a.Handle},
			{UserID: "alice", Handle: b.Handle},
			{UserID: "bob", Handle: c.Handle},
			{UserID: "bob", Handle: d.Handle},
			{UserID: "bob", Handle: a.Handle}, // another user's session
			{UserID: "", Handle: a.Handle},
			{UserID: "alice", Handle: "junk"},
		}
		got, err := h.store.Indexed(ctx, refs)
		if want := []bool{true, false, true, false, false, false, false}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("Indexed = %v, %v; want %v", got, err, want)
		}
		// The session b stays valid: this is what DestroyUser cannot see.
		mustGet(t, h, b.Handle, true)
		if got, err := h.store.DestroyUser(ctx, "alice"); err != nil || !slices.Equal(got, []string{a.Handle}) {
			t.Fatalf("DestroyUser = %v, %v; want only the indexed %s", got, err, a.Handle)
		}
		mustGet(t, h, b.Handle, true)
		if got, err := h.store.Indexed(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("Indexed(nil) = %v, %v", got, err)
		}
	})

	t.Run("exists", func(t *testing.T) {
		h := newH(t, Options{})
		_, a := mustCreate(t, h, "alice", "")
		_, b := mustCreate(t, h, "alice", "")
		_, unknown, _ := h.codec.New()
		if _, err := h.store.Destroy(ctx, b.Handle); err != nil {
			t.Fatal(err)
		}
		handles := []string{a.Handle, b.Handle, "junk", unknown, a.Handle}
		got, err := h.store.Exists(ctx, handles, false)
		if want := []bool{true, false, false, false, true}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("Exists = %v, %v; want %v", got, err, want)
		}
		h.setTTL(t, a.Handle, 100*time.Second)
		if _, err := h.store.Exists(ctx, []string{a.Handle}, false); err != nil {
			t.Fatal(err)
		}
		if ttl := h.ttl(t, a.Handle); ttl > 100*time.Second {
			t.Fatalf("Exists without touch extended TTL to %v", ttl)
		}
		got, err = h.store.Exists(ctx, handles, true)
		if want := []bool{true, false, false, false, true}; err != nil || !slices.Equal(got, want) {
			t.Fatalf("Exists(touch) = %v, %v; want %v", got, err, want)
		}
		if ttl := h.ttl(t, a.Handle); ttl <= 100*time.Second {
			t.Fatalf("Exists(touch) left TTL at %v, want ~%v", ttl, h.opts.IdleTTL)
		}
		if got, err := h.store.Exists(ctx, nil, true); err != nil || len(got) != 0 {
			t.Fatalf("Exists(nil) = %v, %v", got, err)
		}
	})

	t.Run("idle_ttl_rolls_and_expires", func(t *testing.T) {
		// Long next to the real time a step takes on a loaded machine: h.wait
		// moves the TTL clock without sleeping, so only that real time could
		// expire a key early.
		const idle = time.Hour
		h := newH(t, Options{IdleTTL: idle, TouchInterval: idle / 4})
		_, s := mustCreate(t, h, "alice", "")
		h.wait(idle * 6 / 10)
		mustLoad(t, h, s.Handle, true) // activity: the idle TTL restarts
		h.wait(idle * 6 / 10)
		mustGet(t, h, s.Handle, true) // alive past the first idle TTL
		h.wait(idle + idle/4)
		mustGet(t, h, s.Handle, false)
		mustLoad(t, h, s.Handle, false)
		if got, err := h.store.Exists(ctx, []string{s.Handle}, false); err != nil || got[0] {
			t.Fatalf("Exists after idle expiry = %v, %v", got, err)
		}
		if err := h.store.Update(ctx, s); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Update after idle expiry = %v", err)
		}
		if l, err := h.store.ListUser(ctx, "alice"); err != nil || len(l) != 0 {
			t.Fatalf("ListUser after idle expiry = %v, %v", l, err)
		}
	})

	t.Run("touch_is_throttled", func(t *testing.T) {
		h := newH(t, Options{IdleTTL: time.Hour, TouchInterval: time.Minute})
		_, s := mustCreate(t, h, "alice", "")
		expectCmds := func(mark int, want string) {
			t.Helper()
			if h.cmds == nil {
				return
			}
			got := h.cmds.since(mark)
			if want == "evalsha" && slices.Equal(got, []string{"evalsha", "eval"}) {
				return // the server did not have the script cached yet
			}
			if !slices.Equal(got, []string{want}) {
				t.Fatalf("Load sent %v, want one %s", got, want)
			}
		}
		h.setTTL(t, s.Handle, 100*time.Second)
		mark := cmdMark(h)
		mustLoad(t, h, s.Handle, true) // created just now: no touch yet
		expectCmds(mark, "get")
		if ttl := h.ttl(t, s.Handle); ttl > 100*time.Second {
			t.Fatalf("Load within the touch interval of create extended TTL to %v", ttl)
		}

		h.setTTL(t, s.Handle, 10*time.Minute)
		h.clock.Add(2 * time.Minute)
		mark = cmdMark(h)
		mustLoad(t, h, s.Handle, true)
		expectCmds(mark, "evalsha") // GET and a clamped PEXPIRE in one script
		if ttl := h.ttl(t, s.Handle); ttl <= 10*time.Minute || ttl > time.Hour {
			t.Fatalf("Load after the touch interval left TTL at %v, want ~1h", ttl)
		}

		h.setTTL(t, s.Handle, 100*time.Second)
		h.clock.Add(30 * time.Second)
		mark = cmdMark(h)
		mustLoad(t, h, s.Handle, true)
		expectCmds(mark, "get")
		if ttl := h.ttl(t, s.Handle); ttl > 100*time.Second {
			t.Fatalf("second Load within the interval extended TTL to %v", ttl)
		}
		mustGet(t, h, s.Handle, true)
		if ttl := h.ttl(t, s.Handle); ttl > 100*time.Second {
			t.Fatalf("Get extended TTL to %v", ttl)
		}
	})

	t.Run("absolute_lifetime", func(t *testing.T) {
		h := newH(t, Options{IdleTTL: time.Hour, Lifetime: 10 * time.Minute, TouchInterval: time.Minute})
		_, s := mustCreate(t, h, "alice", "")
		if ttl := h.ttl(t, s.Handle); ttl <= 0 || ttl > 10*time.Minute {
			t.Fatalf("TTL at create = %v, want capped at the 10m lifetime", ttl)
		}
		h.clock.Add(5 * time.Minute)
		mustLoad(t, h, s.Handle, true) // a touch near the end must not outlive the lifetime
		if ttl := h.ttl(t, s.Handle); ttl <= 0 || ttl > 5*time.Minute+time.Second {
			t.Fatalf("TTL after touch near end of life = %v, want <= ~5m", ttl)
		}
		_, other := mustCreate(t, h, "alice", "")
		h.clock.Add(5*time.Minute + time.Second)
		if !s.Expired(h.clock.Now()) {
			t.Fatal("Expired = false past ExpiresAt")
		}
		mustGet(t, h, s.Handle, false)
		if ttl := h.ttl(t, s.Handle); ttl > 0 {
			t.Fatalf("absolute-expired session not destroyed (TTL %v)", ttl)
		}
		if err := h.store.Update(ctx, s); !errors.Is(err, ErrNotFound) {
			t.Fatalf("Update past lifetime = %v, want ErrNotFound", err)
		}
		if got := h.members(t, "alice"); !slices.Equal(got, []string{other.Handle}) {
			t.Fatalf("index = %v, want only %s", got, other.Handle)
		}
		h.clock.Add(5 * time.Minute)
		if l, err := h.store.ListUser(ctx, "alice"); err != nil || len(l) != 0 {
			t.Fatalf("ListUser past lifetime = %v, %v", l, err)
		}
		mustLoad(t, h, other.Handle, false)
		if got := h.members(t, "alice"); len(got) != 0 {
			t.Fatalf("index past lifetime = %v, want empty", got)
		}
	})

	// Every path that extends a TTL clamps it to the absolute expiry: a
	// session never lives in the store past its lifetime.
	t.Run("exists_touch_respects_lifetime", func(t *testing.T) {
		h := newH(t, Options{IdleTTL: time.Hour, Lifetime: 10 * time.Minute, TouchInterval: time.Minute})
		_, s := mustCreate(t, h, "alice", "")
		_, quiet := mustCreate(t, h, "alice", "")
		h.clock.Add(8 * time.Minute)
		got, err := h.store.Exists(ctx, []string{s.Handle}, true)
		if err != nil || !got[0] {
			t.Fatalf("Exists(touch) = %v, %v", got, err)
		}
		if ttl := h.ttl(t, s.Handle); ttl <= 0 || ttl > 2*time.Minute+time.Second {
			t.Fatalf("Exists(touch) 8m into a 10m lifetime left TTL %v, want <= 2m", ttl)
		}
		h.clock.Add(2*time.Minute + time.Second)
		got, err = h.store.Exists(ctx, []string{s.Handle, quiet.Handle}, true)
		if err != nil || got[0] || got[1] {
			t.Fatalf("Exists(touch) past the lifetime = %v, %v; want both absent", got, err)
		}
		for _, hd := range []string{s.Handle, quiet.Handle} {
			if ttl := h.ttl(t, hd); ttl > 0 {
				t.Fatalf("session past its lifetime still stored, TTL %v", ttl)
			}
		}
	})

	t.Run("exists_reports_lifetime_end", func(t *testing.T) {
		h := newH(t, Options{IdleTTL: time.Hour, Lifetime: 10 * time.Minute, TouchInterval: time.Minute})
		_, s := mustCreate(t, h, "alice", "")
		h.clock.Add(10*time.Minute + time.Second)
		if got, err := h.store.Exists(ctx, []string{s.Handle}, false); err != nil || got[0] {
			t.Fatalf("Exists past the lifetime = %v, %v; want absent", got, err)
		}
		if ttl := h.ttl(t, s.Handle); ttl > 0 {
			t.Fatalf("session past its lifetime still stored, TTL %v", ttl)
		}
	})

	t.Run("update_respects_lifetime", func(t *testing.T) {
		h := newH(t, Options{IdleTTL: time.Hour, Lifetime: 10 * time.Minute, TouchInterval: time.Minute})
		_, s := mustCreate(t, h, "alice", "")
		orig := s.ExpiresAt
		s.ExpiresAt = h.clock.Now().Add(2 * time.Minute)
		if err := h.store.Update(ctx, s); err != nil {
			t.Fatalf("Update with an earlier expiry: %v", err)
		}
		if ttl := h.ttl(t, s.Handle); ttl <= 0 || ttl > 2*time.Minute+time.Second {
			t.Fatalf("Update to a 2m lifetime left TTL %v, want <= 2m", ttl)
		}
		later := s
		later.ExpiresAt = orig.Add(time.Hour)
		if err := h.store.Update(ctx, later); !errors.Is(err, ErrInvalidData) {
			t.Fatalf("Update moving the expiry later = %v, want ErrInvalidData", err)
		}
		if got := mustGet(t, h, s.Handle, true); !got.ExpiresAt.Equal(s.ExpiresAt) {
			t.Fatalf("ExpiresAt = %v, want %v", got.ExpiresAt, s.ExpiresAt)
		}
		if ttl := h.ttl(t, s.Handle); ttl <= 0 || ttl > 2*time.Minute+time.Second {
			t.Fatalf("refused Update changed TTL to %v", ttl)
		}
	})

	t.Run("redis_holds_no_token_or_id", func(t *testing.T) {
		h := newH(t, Options{})
		if h.rdb == nil {
			t.Skip("no Redis behind this store")
		}
		const marker = "s3cr3t-marker"
		var secrets [][]byte
		var handles []string
		for _, u := range []string{"alice", "alice", "bob"} {
			tok, s := mustCreate(t, h, u, `{"note":"`+marker+`"}`)
			id, err := base64.RawURLEncoding.DecodeString(tok[:strings.IndexByte(tok, '.')])
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, []byte(tok), []byte(tok[:strings.IndexByte(tok, '.')]),
				[]byte(tok[strings.IndexByte(tok, '.')+1:]), id, []byte(hex.EncodeToString(id)))
			handles = append(handles, s.Handle)
		}
		dump := dumpRedis(t, h)
		for _, hd := range handles {
			if !bytes.Contains(dump, []byte(hd)) {
				t.Fatalf("dump lacks handle %s: the dump is incomplete", hd)
			}
		}
		if bytes.Contains(dump, []byte(marker)) {
			t.Fatal("dump contains session data in plaintext")
		}
		for _, sec := range secrets {
			if bytes.Contains(dump, sec) {
				t.Fatalf("dump contains token material %q", sec)
			}
		}
	})

	t.Run("canceled_context", func(t *testing.T) {
		h := newH(t, Options{})
		_, s := mustCreate(t, h, "alice", "")
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, _, err := h.store.Get(cctx, s.Handle); !errors.Is(err, context.Canceled) {
			t.Fatalf("Get(canceled) = %v", err)
		}
		if _, _, err := h.store.Create(cctx, "alice", nil); !errors.Is(err, context.Canceled) {
			t.Fatalf("Create(canceled) = %v", err)
		}
		if _, err := h.store.Indexed(cctx, []IndexRef{{UserID: "alice", Handle: s.Handle}}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Indexed(canceled) = %v", err)
		}
	})

	t.Run("concurrent_use", func(t *testing.T) {
		h := newH(t, Options{TouchInterval: time.Nanosecond})
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				user := fmt.Sprintf("user%d", g%2)
				for range 20 {
					_, s, err := h.store.Create(ctx, user, json.RawMessage(`{"g":1}`))
					if err == nil {
						_, _, err = h.store.Load(ctx, s.Handle)
					}
					if err == nil {
						err = h.store.Update(ctx, s)
					}
					if err == nil {
						_, err = h.store.ListUser(ctx, user)
					}
					if err == nil {
						_, err = h.store.Exists(ctx, []string{s.Handle}, true)
					}
					if err == nil {
						_, err = h.store.Destroy(ctx, s.Handle)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for _, u := range []string{"user0", "user1"} {
			if l, err := h.store.ListUser(ctx, u); err != nil || len(l) != 0 {
				t.Fatalf("ListUser(%s) = %d sessions, %v; want none", u, len(l), err)
			}
		}
	})
}

func cmdMark(h *harness) int {
	if h.cmds == nil {
		return 0
	}
	return h.cmds.len()
}

// dumpRedis returns every key and value in the harness's Redis.
func dumpRedis(t *testing.T, h *harness) []byte {
	t.Helper()
	ctx := context.Background()
	keys, err := h.rdb.Keys(ctx, "*").Result()
	if cc, ok := h.rdb.(*redis.ClusterClient); ok {
		// KEYS answers for one node; a Cluster's keys are on every master.
		var mu sync.Mutex
		keys = nil
		err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			ks, err := m.Keys(ctx, "*").Result()
			mu.Lock()
			keys = append(keys, ks...)
			mu.Unlock()
			return err
		})
	}
	if err != nil {
		t.Fatalf("KEYS: %v", err)
	}
	var buf bytes.Buffer
	for _, k := range keys {
		buf.WriteString(k + "\n")
		typ, err := h.rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatalf("TYPE: %v", err)
		}
		switch typ {
		case "string":
			v, err := h.rdb.Get(ctx, k).Bytes()
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			buf.Write(v)
		case "set":
			ms, err := h.rdb.SMembers(ctx, k).Result()
			if err != nil {
				t.Fatalf("SMEMBERS: %v", err)
			}
			buf.WriteString(strings.Join(ms, "\n"))
		default:
			t.Fatalf("unexpected key type %s for %s", typ, k)
		}
		buf.WriteString("\n")
	}
	return buf.Bytes()
}
