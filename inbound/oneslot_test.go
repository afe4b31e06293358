package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// One operation, one slot: on Redis Cluster every atomic unit the queue
// sends for a user's messages (the enqueue and touch scripts, the ack
// transaction, reads) names keys of one hash slot: the user's partition
// ({n}), or the dead letters alone. A real one-node cluster also refuses
// anything else with CROSSSLOT.
func TestOneOperationOneSlot(t *testing.T) {
	rdb, check := redistest.CheckedCluster(t)
	ctx := context.Background()
	q := NewRedis(rdb, Config{Prefix: "oneslot:", Partitions: 4, VisibilityTimeout: time.Minute})
	if err := q.EnsureGroup(ctx); err != nil {
		t.Fatalf("EnsureGroup: %v", err)
	}
	for _, u := range []string{"alice", "alice", "bob", "carol"} {
		if _, err := q.Enqueue(ctx, Message{UserID: u, Data: json.RawMessage(`{}`)}); err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
	var got []Message
	for deadline := time.Now().Add(30 * time.Second); len(got) < 4; {
		ms, err := q.Read(ctx, "w1", 10, 0)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		got = append(got, ms...)
		if time.Now().After(deadline) {
			t.Fatalf("read %d of 4 messages", len(got))
		}
	}
	if err := q.Extend(ctx, "w1", &got[0]); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	if err := q.Retry(ctx, "w1", &got[1]); err != nil {
		t.Fatalf("Retry: %v", err)
	}
	if err := q.DeadLetter(ctx, &got[2], errors.New("boom")); err != nil {
		t.Fatalf("DeadLetter: %v", err)
	}
	if err := q.Ack(ctx, got[0].ID, got[1].ID, got[3].ID); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	dls, err := q.DeadLetters(ctx, "", 10)
	if err != nil || len(dls) != 1 {
		t.Fatalf("DeadLetters = %v, %v", dls, err)
	}
	if _, err := q.Redrive(ctx, dls[0].ID); err != nil {
		t.Fatalf("Redrive: %v", err)
	}
	if _, err := q.Stats(ctx); err != nil {
		t.Fatalf("Stats: %v", err)
	}

	if len(check.Units()) == 0 {
		t.Fatal("no atomic unit recorded: the check saw nothing")
	}
	for _, v := range check.Violations() {
		t.Errorf("CROSSSLOT on Redis Cluster: %s", v)
	}
	t.Logf("units: %+v", check.Units())
}
