package history

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

// appendN appends n events "<from>".."<from+n-1>" to stream and returns
// their positions.
func appendN(t *testing.T, h store, stream string, from, n int) []Position {
	t.Helper()
	ps := make([]Position, 0, n)
	for i := from; i < from+n; i++ {
		p, err := h.Append(context.Background(), stream, []byte(strconv.Itoa(i)), "")
		if err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	return ps
}

func since(t *testing.T, h store, stream string, pos Position, limit int) Result {
	t.Helper()
	r, err := h.Since(context.Background(), stream, pos, limit)
	if err != nil {
		t.Fatalf("Since(%s, %+v, %d): %v", stream, pos, limit, err)
	}
	return r
}

// checkEvents fails unless evs are offsets from..from+len-1 with the data
// appendN gave them (data = offset + base).
func checkEvents(t *testing.T, evs []Event, from uint64, n, base int) {
	t.Helper()
	if len(evs) != n {
		t.Fatalf("got %d events, want %d", len(evs), n)
	}
	for i, e := range evs {
		want := from + uint64(i)
		if e.Offset != want || string(e.Data) != strconv.Itoa(int(want)+base) {
			t.Fatalf("event %d = {%d %q}, want offset %d data %d", i, e.Offset, e.Data, want, int(want)+base)
		}
	}
}

func unrecoverable(t *testing.T, r Result, what string) {
	t.Helper()
	if r.Recovered || len(r.Events) != 0 {
		t.Fatalf("%s: got Recovered=%v with %d events, want unrecoverable and none", what, r.Recovered, len(r.Events))
	}
}

// TestHistoryContract runs the behaviour both histories promise against
// memory, miniredis and a real redis-server.
func TestHistoryContract(t *testing.T) {
	ctx := context.Background()
	for _, im := range impls(t) {
		t.Run(im.name, func(t *testing.T) {
			t.Run("append and read", func(t *testing.T) {
				h := im.new(t, Config{}).h
				ps := appendN(t, h, "user:alice", 1, 5)
				e := ps[0].Epoch
				for i, p := range ps {
					if p.Epoch != e || p.Offset != uint64(i+1) || len(e) != 16 {
						t.Fatalf("position %d = %+v, want epoch %q offset %d", i, p, e, i+1)
					}
				}
				r := since(t, h, "user:alice", Position{e, 0}, 10)
				if !r.Recovered || r.Current != ps[4] || !r.Complete(Position{e, 0}) {
					t.Fatalf("got %+v", r)
				}
				checkEvents(t, r.Events, 1, 5, 0)
				r = since(t, h, "user:alice", Position{e, 2}, 2)
				checkEvents(t, r.Events, 3, 2, 0)
				if !r.Recovered || r.Complete(Position{e, 2}) {
					t.Fatalf("a limited read: got %+v, want recovered and not complete", r)
				}
				r = since(t, h, "user:alice", ps[4], 10)
				if !r.Recovered || len(r.Events) != 0 || !r.Complete(ps[4]) {
					t.Fatalf("read at the end: got %+v", r)
				}
				// Streams are separate: another one has its own epoch and offsets.
				if p := appendN(t, h, "user:bob", 1, 1)[0]; p.Offset != 1 || p.Epoch == e {
					t.Fatalf("first event of another stream: %+v", p)
				}
			})

			t.Run("position creates the epoch", func(t *testing.T) {
				h := im.new(t, Config{}).h
				p, err := h.Position(ctx, Broadcast)
				if err != nil || p.Epoch == "" || p.Offset != 0 {
					t.Fatalf("Position of a new stream = %+v, %v", p, err)
				}
				if r := since(t, h, Broadcast, p, 10); !r.Recovered || r.Current != p {
					t.Fatalf("Since(current) = %+v", r)
				}
				a := appendN(t, h, Broadcast, 1, 1)[0]
				if a != (Position{p.Epoch, 1}) {
					t.Fatalf("first append after Position = %+v, want epoch %q offset 1", a, p.Epoch)
				}
				if again, _ := h.Position(ctx, Broadcast); again != a {
					t.Fatalf("Position = %+v, want %+v", again, a)
				}
				checkEvents(t, since(t, h, Broadcast, p, 10).Events, 1, 1, 0)
			})

			t.Run("a missing stream is unrecoverable and not created by Since", func(t *testing.T) {
				h := im.new(t, Config{}).h
				r := since(t, h, "user:nobody", Position{"0123456789abcdef", 0}, 10)
				unrecoverable(t, r, "missing stream")
				if r.Current != (Position{}) {
					t.Fatalf("Current = %+v, want zero", r.Current)
				}
				if r := since(t, h, "user:nobody", Position{"0123456789abcdef", 0}, 10); r.Current.Epoch != "" {
					t.Fatalf("Since created the stream: %+v", r.Current)
				}
			})

			t.Run("trim keeps the latest Size events", func(t *testing.T) {
				hh := im.new(t, Config{Size: 10})
				h := hh.h
				const n = 350 // several of Redis's 100-entry stream nodes
				ps := appendN(t, h, "user:alice", 1, n)
				e := ps[0].Epoch
				unrecoverable(t, since(t, h, "user:alice", Position{e, 0}, n), "position before the oldest kept event")
				r := since(t, h, "user:alice", Position{e, n - 10}, n)
				if !r.Recovered {
					t.Fatalf("the last Size events are not recoverable: %+v", r)
				}
				checkEvents(t, r.Events, n-9, 10, 0)
				if hh.exactTrim {
					unrecoverable(t, since(t, h, "user:alice", Position{e, n - 11}, n), "one before the ring")
				}
			})

			t.Run("forged positions are unrecoverable, never errors or others' data", func(t *testing.T) {
				h := im.new(t, Config{}).h
				a := appendN(t, h, "user:alice", 1, 5)
				b := appendN(t, h, "user:bob", 100, 5)
				for _, tc := range []struct {
					name string
					pos  Position
				}{
					{"future offset", Position{a[0].Epoch, 6}},
					{"far future offset", Position{a[0].Epoch, 1 << 62}},
					{"max offset", Position{a[0].Epoch, ^uint64(0)}},
					{"other stream's epoch", Position{b[0].Epoch, 0}},
					{"other stream's epoch at an offset", Position{b[0].Epoch, 2}},
					{"random epoch", Position{"0123456789abcdef", 1}},
					{"empty epoch", Position{"", 0}},
					{"empty epoch with offset", Position{"", 3}},
					{"malformed epoch", Position{"../h:{user:bob}\n\x00é", 1}},
					{"epoch with a suffix", Position{a[0].Epoch + "0", 1}},
				} {
					r := since(t, h, "user:alice", tc.pos, 100)
					unrecoverable(t, r, tc.name)
					if r.Current != a[4] {
						t.Fatalf("%s: Current = %+v, want alice's %+v", tc.name, r.Current, a[4])
					}
				}
			})

			t.Run("bad arguments are errors", func(t *testing.T) {
				h := im.new(t, Config{}).h
				for _, s := range []string{"", "a\nb", "a\x00", string(make([]byte, MaxStreamLen+1)), "\xff"} {
					if _, err := h.Append(ctx, s, []byte("x"), ""); !errors.Is(err, ErrInvalidStream) {
						t.Errorf("Append(%q): %v, want ErrInvalidStream", s, err)
					}
					if _, err := h.Since(ctx, s, Position{}, 1); !errors.Is(err, ErrInvalidStream) {
						t.Errorf("Since(%q): %v, want ErrInvalidStream", s, err)
					}
					if _, err := h.Position(ctx, s); !errors.Is(err, ErrInvalidStream) {
						t.Errorf("Position(%q): %v, want ErrInvalidStream", s, err)
					}
				}
				for _, l := range []int{0, -1} {
					if _, err := h.Since(ctx, "all", Position{}, l); !errors.Is(err, ErrInvalidLimit) {
						t.Errorf("Since limit %d: %v, want ErrInvalidLimit", l, err)
					}
				}
			})

			t.Run("lost history starts a new epoch", func(t *testing.T) {
				hh := im.new(t, Config{})
				ps := appendN(t, hh.h, "user:alice", 1, 5)
				hh.lose(t)
				old := ps[2]
				r := since(t, hh.h, "user:alice", old, 10)
				unrecoverable(t, r, "after the loss")
				if r.Current.Epoch != "" {
					t.Fatalf("Current after the loss = %+v, want no stream", r.Current)
				}
				n := appendN(t, hh.h, "user:alice", 1, 3)
				if n[0].Epoch == old.Epoch || n[0].Offset != 1 {
					t.Fatalf("first append after the loss = %+v, want offset 1 of a new epoch (old %q)", n[0], old.Epoch)
				}
				// The old position names offset 3, which exists again in the
				// new epoch: it must still not be taken for it.
				unrecoverable(t, since(t, hh.h, "user:alice", old, 10), "old position after new appends")
				r = since(t, hh.h, "user:alice", Position{n[0].Epoch, 0}, 10)
				if !r.Recovered {
					t.Fatalf("the new epoch is not readable: %+v", r)
				}
				checkEvents(t, r.Events, 1, 3, 0)
			})

			t.Run("an expired stream starts a new epoch", func(t *testing.T) {
				hh := im.new(t, Config{TTL: time.Hour})
				ps := appendN(t, hh.h, "user:alice", 1, 3)
				hh.expire(t, "user:alice")
				unrecoverable(t, since(t, hh.h, "user:alice", ps[2], 10), "after expiry")
				n := appendN(t, hh.h, "user:alice", 1, 1)[0]
				if n.Epoch == ps[0].Epoch || n.Offset != 1 {
					t.Fatalf("append after expiry = %+v, want offset 1 of a new epoch", n)
				}
			})

			t.Run("appends extend the TTL", func(t *testing.T) {
				hh := im.new(t, Config{TTL: time.Hour})
				if hh.advance == nil {
					t.Skip("a real redis-server's clock cannot be moved; the TTL set on both keys is checked by the expiry test")
				}
				e := appendN(t, hh.h, "user:alice", 1, 1)[0].Epoch
				for i := 2; i <= 4; i++ {
					hh.advance(time.Hour - time.Second)
					if p := appendN(t, hh.h, "user:alice", i, 1)[0]; p != (Position{e, uint64(i)}) {
						t.Fatalf("append %d after %v idle = %+v, want epoch %q kept", i, time.Hour-time.Second, p, e)
					}
				}
				hh.advance(time.Hour)
				unrecoverable(t, since(t, hh.h, "user:alice", Position{e, 1}, 10), "after a TTL idle")
			})

			t.Run("concurrent appenders get one order, no gap, no duplicate, and subscribers see it", func(t *testing.T) {
				hh := im.new(t, Config{Size: 1000})
				live := hh.subscribe(t, "live")
				const writers, each = 8, 100
				got := make([][]Position, writers)
				var wg sync.WaitGroup
				for w := range writers {
					wg.Go(func() {
						for i := range each {
							p, err := hh.h.Append(ctx, "all", fmt.Appendf(nil, "%d/%d", w, i), "live")
							if err != nil {
								t.Error(err)
								return
							}
							got[w] = append(got[w], p)
						}
					})
				}
				wg.Wait()
				if t.Failed() {
					return
				}
				byOffset := map[uint64]string{}
				epoch := got[0][0].Epoch
				for w, ps := range got {
					for i, p := range ps {
						if p.Epoch != epoch {
							t.Fatalf("writer %d got epoch %q, others %q", w, p.Epoch, epoch)
						}
						if i > 0 && p.Offset <= ps[i-1].Offset {
							t.Fatalf("writer %d: offset %d after %d", w, p.Offset, ps[i-1].Offset)
						}
						if prev, dup := byOffset[p.Offset]; dup {
							t.Fatalf("offset %d given to %q and %d/%d", p.Offset, prev, w, i)
						}
						byOffset[p.Offset] = fmt.Sprintf("%d/%d", w, i)
					}
				}
				r := since(t, hh.h, "all", Position{epoch, 0}, writers*each)
				if !r.Recovered || len(r.Events) != writers*each {
					t.Fatalf("history: recovered=%v, %d events", r.Recovered, len(r.Events))
				}
				for i, e := range r.Events {
					if e.Offset != uint64(i+1) || string(e.Data) != byOffset[e.Offset] {
						t.Fatalf("history event %d = {%d %q}, want {%d %q}", i, e.Offset, e.Data, i+1, byOffset[uint64(i+1)])
					}
				}
				for i := range writers * each {
					select {
					case m := <-live:
						l, err := ParseLive(m)
						if err != nil {
							t.Fatal(err)
						}
						if l.Stream != "all" || l.Epoch != epoch || l.Offset != uint64(i+1) || string(l.Data) != byOffset[l.Offset] {
							t.Fatalf("live message %d = %+v (%q), want offset %d of %q", i, l.Position, l.Data, i+1, epoch)
						}
					case <-time.After(waitFor):
						t.Fatalf("live message %d not received", i)
					}
				}
			})

			t.Run("history off", func(t *testing.T) {
				for _, cfg := range []Config{{Size: -1}, {TTL: -1}} {
					hh := im.new(t, cfg)
					live := hh.subscribe(t, "live")
					p, err := hh.h.Append(ctx, "user:alice", []byte("x"), "live")
					if err != nil || p != (Position{}) {
						t.Fatalf("Append = %+v, %v; want the zero position", p, err)
					}
					select {
					case m := <-live:
						l, err := ParseLive(m)
						if err != nil || l.Position != (Position{}) || string(l.Data) != "x" || l.Stream != "user:alice" {
							t.Fatalf("live = %+v, %v", l, err)
						}
					case <-time.After(waitFor):
						t.Fatal("nothing published")
					}
					if p, err := hh.h.Position(ctx, "user:alice"); err != nil || p != (Position{}) {
						t.Fatalf("Position = %+v, %v", p, err)
					}
					unrecoverable(t, since(t, hh.h, "user:alice", Position{}, 10), "history off")
					if hh.redis != nil {
						if keys := hh.redis.Keys(ctx, hh.prefix+"h:*").Val(); len(keys) != 0 {
							t.Fatalf("history off wrote keys %q", keys)
						}
					}
				}
			})
		})
	}
}
