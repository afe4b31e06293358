package inbound

import (
	"context"
	"fmt"
)

// Stats counts every partition's messages, pending and never delivered.
func (q *Memory) Stats(context.Context) (Stats, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := Stats{Partitions: make([]PartitionStats, len(q.parts)), Dead: int64(len(q.dead)), Redelivered: q.redelivered}
	for p, part := range q.parts {
		ps := PartitionStats{Partition: p, Length: int64(len(part.byID))}
		for i, e := range part.entries {
			switch {
			case e.done:
			case i >= part.next:
				ps.Lag++
			default:
				ps.Pending++
			}
		}
		s.Partitions[p] = ps
	}
	s.total()
	return s, nil
}

// DeadLetters lists dead letters after the id after, oldest first.
func (q *Memory) DeadLetters(_ context.Context, after string, count int) ([]DeadLetter, error) {
	if after != "" && !validEntryID(after) {
		return nil, fmt.Errorf("%w: %.80q", ErrBadID, after)
	}
	count = max(count, 1)
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []DeadLetter
	for _, d := range q.dead {
		if len(out) == count {
			break
		}
		if after != "" && !entryAfter(d.ID, after) {
			continue
		}
		d.Message.Data = append([]byte(nil), d.Message.Data...)
		out = append(out, d)
	}
	return out, nil
}

// Redrive queues dead letters again (see [Admin]).
func (q *Memory) Redrive(_ context.Context, ids ...string) (int, error) {
	for _, id := range ids {
		if !validEntryID(id) {
			return 0, fmt.Errorf("%w: %.80q", ErrBadID, id)
		}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, id := range ids {
		i := q.deadIndexLocked(id)
		if i < 0 {
			continue
		}
		m := q.dead[i].Message
		m.ID, m.Deliveries = "", 0
		if _, err := q.addLocked(Partition(m.UserID, q.cfg.Partitions), m); err != nil {
			return n, err
		}
		q.dead = append(q.dead[:i], q.dead[i+1:]...)
		n++
	}
	return n, nil
}

// deadIndexLocked is the index of dead letter id, or -1.
func (q *Memory) deadIndexLocked(id string) int {
	for i, d := range q.dead {
		if d.ID == id {
			return i
		}
	}
	return -1
}

// entryAfter reports whether entry id a sorts after b (both valid).
func entryAfter(a, b string) bool {
	am, as := splitEntryID(a)
	bm, bs := splitEntryID(b)
	return am > bm || (am == bm && as > bs)
}
