package presence

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/sessiongate/sessiongate/internal/fakeclock"
	"github.com/sessiongate/sessiongate/internal/redistest"
)

// recorder collects emitted transitions; fail makes Emit fail.
type recorder struct {
	mu   sync.Mutex
	got  []Transition
	fail bool
}

func (r *recorder) emit(_ context.Context, ts []Transition) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("queue down")
	}
	r.got = append(r.got, ts...)
	return nil
}

func (r *recorder) kinds() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return kinds(r.got)
}

func newTracker(t *testing.T, s Store, inst string, alive *[]string, rec *recorder) *Tracker {
	t.Helper()
	d := Deps{Store: s, Alive: func() []string { return *alive }, Log: zaptest.NewLogger(t)}
	if rec != nil {
		d.Emit = rec.emit
	}
	tr, err := New(Config{Instance: inst}, d)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func TestTrackerCountsAndFlush(t *testing.T) {
	stores(t, func(t *testing.T, s Store) {
		ctx := context.Background()
		alive := []string{"a", "b"}
		rec := &recorder{}
		a, b := newTracker(t, s, "a", &alive, rec), newTracker(t, s, "b", &alive, rec)
		a.Open("alice", "s1")
		a.Open("alice", "s1")
		a.Open("alice", "s2")
		b.Open("alice", "s3")
		a.Open("bob", "s4")
		// Nothing is visible before the flush: no I/O on Open.
		if u, err := a.User(ctx, "alice"); err != nil || len(u.Instances) != 0 {
			t.Fatalf("before flush: %+v %v", u, err)
		}
		for _, tr := range []*Tracker{a, b} {
			if err := tr.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		u, err := b.User(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		want := []Placement{{"a", Counts{3, 2}}, {"b", Counts{1, 1}}}
		if !slices.Equal(u.Instances, want) || u.Total() != (Counts{4, 3}) {
			t.Fatalf("alice: %+v", u)
		}
		users, next, err := a.Page(ctx, "", 1)
		if err != nil || len(users) != 1 || users[0].UserID != "alice" || next == "" {
			t.Fatalf("page 1: %+v %q %v", users, next, err)
		}
		users, next, err = a.Page(ctx, next, 1)
		if err != nil || len(users) != 1 || users[0].UserID != "bob" {
			t.Fatalf("page 2: %+v %q %v", users, next, err)
		}
		// The memory store knows bob is last; Redis may need one more
		// (empty) page to find out.
		if next != "" {
			if users, next, _ = a.Page(ctx, next, 1); len(users) != 0 || next != "" {
				t.Fatalf("page 3: %+v %q", users, next)
			}
		}

		// An instance not alive in the view is never reported, before any purge.
		alive = []string{"b"}
		if u, _ := b.User(ctx, "alice"); !slices.Equal(u.Instances, want[1:]) {
			t.Fatalf("a not alive: %+v", u)
		}
		if users, _, _ := b.Page(ctx, "", 10); len(users) != 1 || users[0].UserID != "alice" {
			t.Fatalf("a not alive, page: %+v", users)
		}
		alive = []string{"a", "b"}

		a.Close("alice", "s1")
		a.Close("alice", "s1")
		a.Close("alice", "s2")
		a.Close("bob", "s4")
		b.Close("alice", "s3")
		for _, tr := range []*Tracker{a, b} {
			if err := tr.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if u, _ := a.User(ctx, "alice"); len(u.Instances) != 0 {
			t.Fatalf("after close: %+v", u)
		}
		if n := a.LocalUsers() + b.LocalUsers(); n != 0 {
			t.Fatalf("local users left: %d", n)
		}
		if got := rec.kinds(); !slices.Equal(got, []string{"alice+", "bob+", "alice-", "bob-"}) &&
			!slices.Equal(got, []string{"bob+", "alice+", "bob-", "alice-"}) &&
			!slices.Equal(got, []string{"alice+", "bob+", "bob-", "alice-"}) &&
			!slices.Equal(got, []string{"bob+", "alice+", "alice-", "bob-"}) {
			t.Fatalf("events %v", got)
		}
	})
}

// A connection that opens and closes between two flushes costs no write
// and no event.
func TestTrackerCoalesces(t *testing.T) {
	s := NewMemory(nil)
	alive := []string{"a"}
	rec := &recorder{}
	a := newTracker(t, s, "a", &alive, rec)
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	a.Open("alice", "s1")
	a.Close("alice", "s1")
	if err := a.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := rec.kinds(); len(got) != 0 || a.LocalUsers() != 0 {
		t.Fatalf("events %v, local %d", got, a.LocalUsers())
	}
}

// Events the queue refuses are kept and sent with the next flush.
func TestTrackerEmitRetries(t *testing.T) {
	s := NewMemory(nil)
	alive := []string{"a"}
	rec := &recorder{fail: true}
	a := newTracker(t, s, "a", &alive, rec)
	ctx := context.Background()
	a.Open("alice", "s1")
	_ = a.Flush(ctx)
	a.Close("alice", "s1")
	_ = a.Flush(ctx)
	if got := rec.kinds(); len(got) != 0 {
		t.Fatalf("emitted while failing: %v", got)
	}
	rec.mu.Lock()
	rec.fail = false
	rec.mu.Unlock()
	_ = a.Flush(ctx)
	if got := rec.kinds(); !slices.Equal(got, []string{"alice+", "alice-"}) {
		t.Fatalf("after recovery: %v", got)
	}
}

// A gone instance (stale and not alive) is purged by a survivor, which
// emits offline for the users nobody else holds; an alive instance with a
// stale record (a slow refresh) is left alone.
func TestTrackerPurgesGone(t *testing.T) {
	clk := fakeclock.New(time.Now())
	s := NewMemory(clk.Now)
	alive := []string{"a", "b"}
	rec := &recorder{}
	a, b := newTracker(t, s, "a", &alive, rec), newTracker(t, s, "b", &alive, rec)
	ctx := context.Background()
	a.Open("alice", "s1")
	a.Open("bob", "s2")
	b.Open("bob", "s3")
	for _, tr := range []*Tracker{a, b} {
		if err := tr.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		tr.refresh(ctx)
	}
	clk.Add(16 * time.Second) // a stops refreshing (killed)
	b.refresh(ctx)
	b.purgeGone(ctx) // a is stale but the view still says alive
	if u, _ := b.User(ctx, "alice"); len(u.Instances) != 1 {
		t.Fatalf("alive a purged: %+v", u)
	}
	alive = []string{"b"}
	b.purgeGone(ctx)
	if u, _ := b.User(ctx, "bob"); !slices.Equal(u.Instances, []Placement{{"b", Counts{1, 1}}}) {
		t.Fatalf("bob after purge: %+v", u)
	}
	got := rec.kinds()
	if !slices.Contains(got, "alice-") || slices.Contains(got, "bob-") {
		t.Fatalf("events %v: want alice- (instance gone), no bob-", got)
	}
	// a comes back (it was only cut off): its refresh finds its records
	// gone and writes them again; alice is online again.
	alive = []string{"a", "b"}
	a.refresh(ctx)
	if u, _ := b.User(ctx, "alice"); len(u.Instances) != 1 {
		t.Fatalf("a's records not rewritten: %+v", u)
	}
	if got := rec.kinds(); got[len(got)-1] != "alice+" {
		t.Fatalf("events %v: want a final alice+", got)
	}
}

func TestTrackerPageInput(t *testing.T) {
	s := NewMemory(nil)
	alive := []string{"a"}
	a := newTracker(t, s, "a", &alive, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		cursor string
		limit  int
		want   error
	}{
		{"zero limit", "", 0, ErrBadLimit},
		{"negative limit", "", -1, ErrBadLimit},
		{"limit too large", "", MaxPageSize + 1, ErrBadLimit},
		{"not base64", "!!", 10, ErrBadCursor},
		{"padding", "YQ==", 10, ErrBadCursor},
		{"not utf-8", EncodeCursor("\xff"), 10, ErrBadCursor},
		{"too long", EncodeCursor(string(make([]byte, 2000))), 10, ErrBadCursor},
		{"ok", EncodeCursor("alice"), 10, nil},
		{"max limit", "", MaxPageSize, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := a.Page(ctx, tc.cursor, tc.limit)
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func FuzzDecodeCursor(f *testing.F) {
	f.Add("")
	f.Add(EncodeCursor("alice"))
	f.Add("!!")
	f.Fuzz(func(t *testing.T, c string) {
		u, err := DecodeCursor(c)
		if err == nil && u != "" && EncodeCursor(u) != c {
			t.Fatalf("cursor %q decodes to %q which encodes to %q", c, u, EncodeCursor(u))
		}
	})
}

// Past MaxPendingEvents waiting for a queue that refuses them, the oldest
// are dropped; the newest still go out once the queue is back.
func TestTrackerPendingBounded(t *testing.T) {
	s := NewMemory(nil)
	alive := []string{"a"}
	rec := &recorder{fail: true}
	tr, err := New(Config{Instance: "a", MaxPendingEvents: 3},
		Deps{Store: s, Alive: func() []string { return alive }, Emit: rec.emit, Log: zaptest.NewLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, u := range []string{"u1", "u2", "u3", "u4", "u5"} {
		tr.Open(u, "s")
		_ = tr.Flush(ctx)
	}
	rec.mu.Lock()
	rec.fail = false
	rec.mu.Unlock()
	_ = tr.Flush(ctx)
	if got := rec.kinds(); !slices.Equal(got, []string{"u3+", "u4+", "u5+"}) {
		t.Fatalf("after recovery: %v", got)
	}
}

// Records that expired (not purged) while a user left: the rewrite still
// removes the user from its record, so the user goes offline.
func TestTrackerRewriteRemovesLeftUsers(t *testing.T) {
	srv := redistest.Start(t)
	s := newRedisStore(t, srv)
	alive := []string{"a"}
	rec := &recorder{}
	a := newTracker(t, s, "a", &alive, rec)
	ctx := context.Background()
	a.Open("alice", "s1")
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// The instance's keys vanish (TTL) but alice's record keeps "a".
	if _, err := srv.Do("DEL t:presence:{a}:users"); err != nil {
		t.Fatal(err)
	}
	a.Close("alice", "s1")
	a.refresh(ctx) // finds the records gone: rewrites them
	if got := rec.kinds(); !slices.Equal(got, []string{"alice+", "alice-"}) {
		t.Fatalf("events %v", got)
	}
	if u, _ := a.User(ctx, "alice"); len(u.Instances) != 0 {
		t.Fatalf("alice: %+v", u)
	}
}

// A connection's close reported before its open cancels out: no count is
// left behind.
func TestTrackerCloseBeforeOpen(t *testing.T) {
	s := NewMemory(nil)
	alive := []string{"a"}
	a := newTracker(t, s, "a", &alive, nil)
	ctx := context.Background()
	a.Open("alice", "s1")
	a.Close("alice", "s2")
	a.Open("alice", "s2")
	if err := a.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if u, _ := a.User(ctx, "alice"); !slices.Equal(u.Instances, []Placement{{"a", Counts{1, 1}}}) {
		t.Fatalf("alice: %+v", u)
	}
	a.Close("alice", "s1")
	_ = a.Flush(ctx)
	if u, _ := a.User(ctx, "alice"); len(u.Instances) != 0 || a.LocalUsers() != 0 {
		t.Fatalf("alice after close: %+v, local %d", u, a.LocalUsers())
	}
}
