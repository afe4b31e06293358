package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

// msg is a message from user with data {"n":n}.
func msg(user string, n int) Message {
	return Message{ClientID: fmt.Sprintf("c%d", n), Event: "chat", Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
		UserID: user, Handle: "h-" + user, ConnID: "conn-" + user, Instance: "gw-1",
		Received: time.Unix(1_700_000_000, int64(n)).UTC()}
}

// enqueue queues ms and returns their ids.
func enqueue(t *testing.T, q Producer, ms ...Message) []string {
	t.Helper()
	ids := make([]string, len(ms))
	for i, m := range ms {
		id, err := q.Enqueue(context.Background(), m)
		if err != nil {
			t.Fatalf("Enqueue %d: %v", i, err)
		}
		ids[i] = id
	}
	return ids
}

// read is one Read that does not wait.
func read(t *testing.T, q Consumer, consumer string, count int) []Message {
	t.Helper()
	ms, err := q.Read(context.Background(), consumer, count, 0)
	if err != nil {
		t.Fatalf("Read(%s): %v", consumer, err)
	}
	return ms
}

// readN reads as consumer until it has n messages (Redis claims on a
// timer of its own), failing on more.
func readN(t *testing.T, q Consumer, consumer string, n int) []Message {
	t.Helper()
	var got []Message
	eventually(t, fmt.Sprintf("%s to read %d messages", consumer, n), func() bool {
		got = append(got, read(t, q, consumer, n)...)
		return len(got) >= n
	})
	if len(got) != n {
		t.Fatalf("%s read %d messages, want %d: %v", consumer, len(got), n, ids(got))
	}
	return got
}

func ids(ms []Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// same fails unless got is want as queued with id and deliveries.
func same(t *testing.T, got, want Message, id string, deliveries int) {
	t.Helper()
	want.ID, want.Deliveries = id, deliveries
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("message\n got %s\nwant %s", g, w)
	}
}

func stats(t *testing.T, q Admin) Stats {
	t.Helper()
	s, err := q.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func deadLetters(t *testing.T, q Admin) []DeadLetter {
	t.Helper()
	ds, err := q.DeadLetters(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestQueueContract runs the behaviour both queues promise against
// memory, a real redis-server and a one-node Redis Cluster.
func TestQueueContract(t *testing.T) {
	ctx := context.Background()
	for _, im := range impls(t) {
		t.Run(im.name, func(t *testing.T) {
			t.Run("read in order, ack removes", func(t *testing.T) {
				q := im.new(t, Config{Partitions: 1}).q
				in := []Message{msg("alice", 1), msg("alice", 2), msg("alice", 3)}
				want := enqueue(t, q, in...)
				got := read(t, q, "c1", 10)
				if !slices.Equal(ids(got), want) {
					t.Fatalf("read %v, want %v", ids(got), want)
				}
				for i := range got {
					same(t, got[i], in[i], want[i], 1)
				}
				if s := stats(t, q); s.Length != 3 || s.Pending != 3 || s.Lag != 0 || s.Dead != 0 {
					t.Fatalf("stats after read = %+v", s)
				}
				if err := q.Ack(ctx, want[0], want[1]); err != nil {
					t.Fatal(err)
				}
				if s := stats(t, q); s.Length != 1 || s.Pending != 1 {
					t.Fatalf("stats after two acks = %+v", s)
				}
				if err := q.Ack(ctx, want[2], want[2]); err != nil { // twice: not an error
					t.Fatal(err)
				}
				if s := stats(t, q); s.Length != 0 || s.Pending != 0 {
					t.Fatalf("stats after acks = %+v", s)
				}
				if got := read(t, q, "c2", 10); len(got) != 0 {
					t.Fatalf("read after acks: %v", ids(got))
				}
			})

			t.Run("not redelivered within the visibility timeout", func(t *testing.T) {
				h := im.new(t, Config{VisibilityTimeout: time.Hour})
				enqueue(t, h.q, msg("alice", 1))
				if got := read(t, h.q, "c1", 10); len(got) != 1 {
					t.Fatalf("c1 read %d", len(got))
				}
				if h.clock != nil {
					h.clock.Add(time.Hour - time.Millisecond)
				}
				if got := read(t, h.q, "c2", 10); len(got) != 0 {
					t.Fatalf("c2 got %v within the timeout", ids(got))
				}
			})

			t.Run("redelivered after the visibility timeout to another consumer", func(t *testing.T) {
				h := im.new(t, Config{})
				in := msg("alice", 1)
				id := enqueue(t, h.q, in)[0]
				m := read(t, h.q, "c1", 10)[0]
				h.expire(t)
				got := readN(t, h.q, "c2", 1)[0]
				same(t, got, in, id, 2)
				if err := h.q.Extend(ctx, "c1", &m); !errors.Is(err, ErrNotHeld) {
					t.Fatalf("Extend by the former holder = %v, want ErrNotHeld", err)
				}
				if err := h.q.Retry(ctx, "c1", &m); !errors.Is(err, ErrNotHeld) {
					t.Fatalf("Retry by the former holder = %v, want ErrNotHeld", err)
				}
				if err := h.q.Extend(ctx, "c2", &got); err != nil {
					t.Fatalf("Extend by the holder: %v", err)
				}
				if err := h.q.Ack(ctx, got.ID); err != nil {
					t.Fatal(err)
				}
				if s := stats(t, h.q); s.Length != 0 || s.Pending != 0 || s.Redelivered != 1 {
					t.Fatalf("stats = %+v, want nothing left and 1 redelivery", s)
				}
			})

			t.Run("retry counts a delivery", func(t *testing.T) {
				h := im.new(t, Config{})
				id := enqueue(t, h.q, msg("alice", 1))[0]
				m := read(t, h.q, "c1", 10)[0]
				if err := h.q.Retry(ctx, "c1", &m); err != nil || m.Deliveries != 2 {
					t.Fatalf("Retry: %v, deliveries %d, want 2", err, m.Deliveries)
				}
				h.expire(t)
				if got := readN(t, h.q, "c2", 1)[0]; got.ID != id || got.Deliveries != 3 {
					t.Fatalf("claimed %s with %d deliveries, want %s with 3", got.ID, got.Deliveries, id)
				}
				if s := stats(t, h.q); s.Redelivered != 2 {
					t.Fatalf("stats = %+v, want 2 redeliveries (a retry, a claim)", s)
				}
			})

			t.Run("dead letter with the error", func(t *testing.T) {
				h := im.new(t, Config{})
				in := msg("alice", 1)
				id := enqueue(t, h.q, in)[0]
				m := read(t, h.q, "c1", 10)[0]
				if err := h.q.DeadLetter(ctx, &m, errors.New("boom: bad input")); err != nil {
					t.Fatal(err)
				}
				ds := deadLetters(t, h.q)
				if len(ds) != 1 || ds[0].Error != "boom: bad input" || ds[0].Deliveries != 1 || ds[0].ID == "" || ds[0].Failed.IsZero() {
					t.Fatalf("dead letters = %+v", ds)
				}
				same(t, ds[0].Message, in, id, 1)
				if s := stats(t, h.q); s.Length != 0 || s.Pending != 0 || s.Dead != 1 {
					t.Fatalf("stats = %+v", s)
				}
				h.expire(t)
				if got := read(t, h.q, "c2", 10); len(got) != 0 {
					t.Fatalf("a dead letter was delivered again: %v", ids(got))
				}
			})

			t.Run("dead letter after MaxDeliveries deliveries", func(t *testing.T) {
				h := im.new(t, Config{MaxDeliveries: 3})
				in := msg("alice", 1)
				id := enqueue(t, h.q, in)[0]
				consumers := []string{"c1", "c2", "c3"}
				for i, c := range consumers {
					if i > 0 {
						h.expire(t)
					}
					if m := readN(t, h.q, c, 1)[0]; m.Deliveries != i+1 || m.ID != id {
						t.Fatalf("delivery %d: %s with count %d", i+1, m.ID, m.Deliveries)
					}
				}
				h.expire(t)
				eventually(t, "the message to be dead-lettered", func() bool {
					if got := read(t, h.q, "c4", 10); len(got) != 0 {
						t.Fatalf("delivered a 4th time: %+v", got)
					}
					return stats(t, h.q).Dead == 1
				})
				ds := deadLetters(t, h.q)
				if len(ds) != 1 || ds[0].Deliveries != 3 || ds[0].Error != ErrTooManyDeliveries.Error() {
					t.Fatalf("dead letters = %+v", ds)
				}
				same(t, ds[0].Message, in, id, 3)
				if s := stats(t, h.q); s.Length != 0 || s.Pending != 0 {
					t.Fatalf("stats = %+v", s)
				}
			})

			t.Run("length cap refuses and loses nothing", func(t *testing.T) {
				q := im.new(t, Config{Partitions: 1, MaxLen: 5, VisibilityTimeout: time.Hour}).q
				var in []Message
				for i := range 5 {
					in = append(in, msg("alice", i))
				}
				want := enqueue(t, q, in...)
				if _, err := q.Enqueue(ctx, msg("bob", 99)); !errors.Is(err, ErrFull) {
					t.Fatalf("6th Enqueue = %v, want ErrFull", err)
				}
				got := read(t, q, "c1", 10)
				if _, err := q.Enqueue(ctx, msg("bob", 99)); !errors.Is(err, ErrFull) {
					t.Fatalf("Enqueue with 5 pending = %v, want ErrFull (pending messages are not done)", err)
				}
				if !slices.Equal(ids(got), want) {
					t.Fatalf("read %v, want %v", ids(got), want)
				}
				for i := range got {
					same(t, got[i], in[i], want[i], 1)
				}
				if err := q.Ack(ctx, got[0].ID); err != nil {
					t.Fatal(err)
				}
				extra := enqueue(t, q, msg("bob", 100))[0]
				if got := read(t, q, "c1", 10); len(got) != 1 || got[0].ID != extra {
					t.Fatalf("after an ack read %v, want [%s]", ids(got), extra)
				}
			})

			t.Run("per-user order", func(t *testing.T) {
				h := im.new(t, Config{Partitions: 4})
				users := []string{"alice", "bob", "carol", "dave", "erin"}
				queued := map[string][]string{}
				for i := range 200 {
					u := users[i%len(users)]
					queued[u] = append(queued[u], enqueue(t, h.q, msg(u, i))[0])
				}
				seen := map[string][]string{}
				for n := 0; n < 200; {
					got := read(t, h.q, "c1", 7)
					if len(got) == 0 {
						t.Fatalf("read nothing after %d of 200", n)
					}
					for _, m := range got {
						seen[m.UserID] = append(seen[m.UserID], m.ID)
					}
					if err := h.q.Ack(ctx, ids(got)...); err != nil {
						t.Fatal(err)
					}
					n += len(got)
				}
				for _, u := range users {
					if !slices.Equal(seen[u], queued[u]) {
						t.Fatalf("%s: read %v, queued %v", u, seen[u], queued[u])
					}
				}
				// A dead consumer's messages come back before newer ones.
				a := enqueue(t, h.q, msg("alice", 1), msg("alice", 2))
				if got := read(t, h.q, "c1", 10); !slices.Equal(ids(got), a) {
					t.Fatalf("read %v, want %v", ids(got), a)
				}
				a = append(a, enqueue(t, h.q, msg("alice", 3))...)
				h.expire(t)
				if got := readN(t, h.q, "c2", 3); !slices.Equal(ids(got), a) {
					t.Fatalf("after the timeout read %v, want %v", ids(got), a)
				}
			})

			t.Run("partitions spread users", func(t *testing.T) {
				q := im.new(t, Config{}).q
				for i := range 400 {
					u := fmt.Sprintf("user-%d", i)
					id := enqueue(t, q, msg(u, i))[0]
					if p, _, err := parseID(id, DefaultPartitions); err != nil || p != Partition(u, DefaultPartitions) {
						t.Fatalf("%s queued as %s (%v), want partition %d", u, id, err, Partition(u, DefaultPartitions))
					}
				}
				s := stats(t, q)
				if len(s.Partitions) != DefaultPartitions || s.Length != 400 || s.Lag != 400 {
					t.Fatalf("stats = %+v", s)
				}
				for _, p := range s.Partitions {
					if p.Length < 5 {
						t.Fatalf("partition %d holds %d of 400 messages: %+v", p.Partition, p.Length, s.Partitions)
					}
				}
			})

			t.Run("redrive", func(t *testing.T) {
				h := im.new(t, Config{Partitions: 1, MaxLen: 2})
				in := msg("alice", 1)
				old := enqueue(t, h.q, in)[0]
				m := read(t, h.q, "c1", 10)[0]
				if err := h.q.Retry(ctx, "c1", &m); err != nil {
					t.Fatal(err)
				}
				if err := h.q.DeadLetter(ctx, &m, errors.New("boom")); err != nil {
					t.Fatal(err)
				}
				d := deadLetters(t, h.q)[0]
				if d.Deliveries != 2 {
					t.Fatalf("dead letter %+v, want 2 deliveries", d)
				}
				// A full partition refuses the redrive; the dead letter stays.
				enqueue(t, h.q, msg("bob", 2), msg("bob", 3))
				if n, err := h.q.Redrive(ctx, d.ID); !errors.Is(err, ErrFull) || n != 0 {
					t.Fatalf("Redrive into a full partition = %d, %v; want 0, ErrFull", n, err)
				}
				if len(deadLetters(t, h.q)) != 1 {
					t.Fatal("a refused redrive lost the dead letter")
				}
				for _, m := range read(t, h.q, "c1", 10) {
					if err := h.q.Ack(ctx, m.ID); err != nil {
						t.Fatal(err)
					}
				}
				if n, err := h.q.Redrive(ctx, d.ID, "1-0"); err != nil || n != 1 {
					t.Fatalf("Redrive = %d, %v; want 1 (the unknown id skipped)", n, err)
				}
				if ds := deadLetters(t, h.q); len(ds) != 0 {
					t.Fatalf("dead letters after redrive = %+v", ds)
				}
				got := read(t, h.q, "c2", 10)
				if len(got) != 1 || got[0].ID == old {
					t.Fatalf("after redrive read %v, want one message with a new id (old %s)", ids(got), old)
				}
				same(t, got[0], in, got[0].ID, 1)
				if _, err := h.q.Redrive(ctx, "nope"); !errors.Is(err, ErrBadID) {
					t.Fatalf("Redrive(nope) = %v, want ErrBadID", err)
				}
			})

			t.Run("stats", func(t *testing.T) {
				q := im.new(t, Config{Partitions: 2}).q
				var alice []Message
				for i := range 3 {
					alice = append(alice, msg("alice", i))
				}
				enqueue(t, q, alice...)
				got := read(t, q, "c1", 1)
				if err := q.DeadLetter(ctx, &got[0], errors.New("x")); err != nil {
					t.Fatal(err)
				}
				read(t, q, "c1", 1)
				pa := Partition("alice", 2)
				s := stats(t, q)
				want := PartitionStats{Partition: pa, Length: 2, Pending: 1, Lag: 1}
				if s.Partitions[pa] != want || s.Partitions[1-pa] != (PartitionStats{Partition: 1 - pa}) {
					t.Fatalf("partitions = %+v, want alice's %+v and an empty one", s.Partitions, want)
				}
				if s.Length != 2 || s.Pending != 1 || s.Lag != 1 || s.Dead != 1 {
					t.Fatalf("stats = %+v", s)
				}
			})

			t.Run("release returns unstarted messages at once, uncounted", func(t *testing.T) {
				q := im.new(t, Config{VisibilityTimeout: time.Hour}).q
				want := enqueue(t, q, msg("alice", 1), msg("alice", 2))
				got := read(t, q, "c1", 10)
				if err := q.Release(ctx, "c1", got); err != nil {
					t.Fatal(err)
				}
				again := read(t, q, "c2", 10)
				if !slices.Equal(ids(again), want) || again[0].Deliveries != 1 || again[1].Deliveries != 1 {
					t.Fatalf("after release c2 read %+v, want %v with 1 delivery each", again, want)
				}
				if err := q.Release(ctx, "c1", got); err != nil { // no longer c1's: skipped
					t.Fatal(err)
				}
				if got := read(t, q, "c3", 10); len(got) != 0 {
					t.Fatalf("a release by a former holder gave %v away", ids(got))
				}
			})

			t.Run("a blocked read wakes on enqueue", func(t *testing.T) {
				q := im.new(t, Config{}).q
				done := make(chan []Message)
				go func() {
					ms, _ := q.Read(ctx, "c1", 10, waitFor)
					done <- ms
				}()
				var want string
				eventually(t, "the blocked read to take a message", func() bool {
					if want == "" {
						want = enqueue(t, q, msg("alice", 1))[0]
					}
					select {
					case got := <-done:
						if len(got) != 1 || got[0].ID != want {
							t.Fatalf("blocked read returned %v, want [%s]", ids(got), want)
						}
						return true
					default:
						return false
					}
				})
			})

			t.Run("the group comes back after Redis lost it", func(t *testing.T) {
				h := im.new(t, Config{})
				if h.lose == nil {
					t.Skip("memory: nothing to lose")
				}
				enqueue(t, h.q, msg("alice", 1))
				h.lose(t) // FLUSHALL: streams and groups gone
				id := enqueue(t, h.q, msg("alice", 2))[0]
				if got := readN(t, h.q, "c1", 1); got[0].ID != id {
					t.Fatalf("read %v, want [%s]", ids(got), id)
				}
			})

			t.Run("bad ids", func(t *testing.T) {
				q := im.new(t, Config{Partitions: 4}).q
				for _, id := range []string{"", "nope", "4-1-0", "-1-1-0", "01-1-0", "1-1", "1-x-0"} {
					if err := q.Ack(ctx, id); !errors.Is(err, ErrBadID) {
						t.Errorf("Ack(%q) = %v, want ErrBadID", id, err)
					}
				}
				if _, err := q.DeadLetters(ctx, "x", 10); !errors.Is(err, ErrBadID) {
					t.Errorf("DeadLetters(after x) = %v, want ErrBadID", err)
				}
			})
		})
	}
}
