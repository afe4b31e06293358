package history

import (
	"context"
	"testing"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// One operation, one slot: on Redis Cluster every atomic unit the history
// sends for a user's stream (the append and position scripts, the read
// transaction) names the stream and its hash, which share the hash tag
// {user:<id>}, so they are in one slot. A real one-node cluster also
// refuses anything else with CROSSSLOT.
func TestOneOperationOneSlot(t *testing.T) {
	rdb, check := redistest.CheckedCluster(t)
	ctx := context.Background()
	h := NewRedis(rdb, Config{Prefix: "oneslot:"})
	for _, user := range []string{"alice", "bob", "we{ird}"} {
		stream := UserStream(user)
		pos, err := h.Append(ctx, stream, []byte(`{"n":1}`), "oneslot:events")
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if _, err := h.Position(ctx, stream); err != nil {
			t.Fatalf("Position: %v", err)
		}
		if _, err := h.Since(ctx, stream, Position{Epoch: pos.Epoch}, 10); err != nil {
			t.Fatalf("Since: %v", err)
		}
	}
	units := check.Units()
	if len(units) == 0 {
		t.Fatal("no atomic unit recorded: the check saw nothing")
	}
	for _, v := range check.Violations() {
		t.Errorf("CROSSSLOT on Redis Cluster: %s", v)
	}
}
