package session

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// One operation, one slot: every atomic unit the store sends (a Lua
// script, a transaction, a multi-key command) names keys of one Redis
// Cluster hash slot, for every operation of the Store interface, so none
// can fail with CROSSSLOT. The store's scripts touch one key each; the
// session key and the user index are in different slots and are never
// in one atomic unit (see docs/ARCHITECTURE.md, "Keys on Redis Cluster").
func TestOneOperationOneSlot(t *testing.T) {
	h := miniredisHarness(t, Options{TouchInterval: time.Nanosecond})
	check := &redistest.SlotCheck{}
	h.rdb.AddHook(check)
	ctx := context.Background()

	_, a := mustCreate(t, h, "alice", `{"n":1}`)
	_, b := mustCreate(t, h, "alice", `{"n":2}`)
	_, c := mustCreate(t, h, "bob", `{}`)
	mustGet(t, h, a.Handle, true)
	h.wait(time.Second)
	mustLoad(t, h, a.Handle, true)
	a.Data = json.RawMessage(`{"n":3}`)
	if err := h.store.Update(ctx, a); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if _, err := h.store.Exists(ctx, []string{a.Handle, b.Handle, c.Handle}, true); err != nil {
		t.Fatalf("Exists: %v", err)
	}
	if _, err := h.store.ListUser(ctx, "alice"); err != nil {
		t.Fatalf("ListUser: %v", err)
	}
	if _, err := h.store.Indexed(ctx, []IndexRef{{UserID: "alice", Handle: a.Handle}, {UserID: "bob", Handle: c.Handle}}); err != nil {
		t.Fatalf("Indexed: %v", err)
	}
	if _, err := h.store.Generation(ctx); err != nil {
		t.Fatalf("Generation: %v", err)
	}
	if ok, err := h.store.Destroy(ctx, c.Handle); err != nil || !ok {
		t.Fatalf("Destroy = %v, %v", ok, err)
	}
	if hs, err := h.store.DestroyUser(ctx, "alice"); err != nil || len(hs) != 2 {
		t.Fatalf("DestroyUser = %v, %v", hs, err)
	}

	units := check.Units()
	if len(units) == 0 {
		t.Fatal("no atomic unit recorded: the check saw nothing")
	}
	for _, u := range units {
		if len(u.Keys) == 0 {
			t.Errorf("%s names no key: a script must pass its keys in KEYS", u.Command)
		}
	}
	for _, v := range check.Violations() {
		t.Errorf("CROSSSLOT on Redis Cluster: %s", v)
	}
}
