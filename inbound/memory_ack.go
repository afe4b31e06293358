package inbound

import (
	"context"
	"fmt"
)

// Ack removes the messages ids from the queue.
func (q *Memory) Ack(ctx context.Context, ids ...string) error {
	type ref struct {
		p  int
		id string
	}
	refs := make([]ref, 0, len(ids))
	for _, id := range ids {
		p, e, err := parseID(id, q.cfg.Partitions)
		if err != nil {
			return err
		}
		refs = append(refs, ref{p, e})
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, r := range refs {
		q.removeLocked(r.p, r.id)
	}
	return nil
}

// removeLocked drops entry id of partition p, compacting the partition
// once half of its slice is dead weight.
func (q *Memory) removeLocked(p int, id string) {
	part := q.parts[p]
	e, ok := part.byID[id]
	if !ok {
		return
	}
	e.done = true
	delete(part.byID, id)
	part.done++
	if part.done < 64 || part.done*2 < len(part.entries) {
		return
	}
	kept := make([]*memEntry, 0, len(part.byID))
	next := 0
	for i, e := range part.entries {
		if e.done {
			continue
		}
		if i < part.next {
			next++
		}
		kept = append(kept, e)
	}
	part.entries, part.next, part.done = kept, next, 0
}

// heldLocked returns the entry of m if consumer holds it.
func (q *Memory) heldLocked(consumer string, m *Message) (*memEntry, error) {
	p, id, err := parseID(m.ID, q.cfg.Partitions)
	if err != nil {
		return nil, err
	}
	e, ok := q.parts[p].byID[id]
	if !ok || !e.delivered || e.owner != consumer {
		return nil, fmt.Errorf("%w: %s", ErrNotHeld, m.ID)
	}
	return e, nil
}

// Extend restarts m's visibility timeout for consumer.
func (q *Memory) Extend(_ context.Context, consumer string, m *Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := q.heldLocked(consumer, m)
	if err != nil {
		return err
	}
	e.at = q.now()
	return nil
}

// Retry counts another delivery of m to consumer.
func (q *Memory) Retry(_ context.Context, consumer string, m *Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, err := q.heldLocked(consumer, m)
	if err != nil {
		return err
	}
	e.at = q.now()
	e.deliveries++
	m.Deliveries = e.deliveries
	q.redelivered++
	return nil
}

// Release makes ms claimable at once, uncounting their last delivery.
func (q *Memory) Release(_ context.Context, consumer string, ms []Message) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i := range ms {
		e, err := q.heldLocked(consumer, &ms[i])
		if err != nil {
			continue
		}
		e.at = q.now().Add(-q.cfg.VisibilityTimeout)
		e.deliveries = max(e.deliveries-1, 0)
	}
	return nil
}

// DeadLetter moves m to the dead letters with cause.
func (q *Memory) DeadLetter(_ context.Context, m *Message, cause error) error {
	if _, _, err := parseID(m.ID, q.cfg.Partitions); err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.deadLetterLocked(m, cause)
	return nil
}

// deadLetterLocked records m as dead with cause and removes it.
func (q *Memory) deadLetterLocked(m *Message, cause error) {
	msg := "unknown error"
	if cause != nil {
		msg = cause.Error()
	}
	now := q.now()
	d := *m
	d.Data = append([]byte(nil), m.Data...)
	q.dead = append(q.dead, DeadLetter{ID: q.deadIDs.next(now), Message: d, Error: msg,
		Deliveries: m.Deliveries, Failed: now.UTC()})
	if p, id, err := parseID(m.ID, q.cfg.Partitions); err == nil {
		q.removeLocked(p, id)
	}
}
