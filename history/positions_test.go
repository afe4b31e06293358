package history

import (
	"context"
	"testing"
)

// positioner is what Positions adds to both histories.
type positioner interface {
	Positions(ctx context.Context, streams ...string) ([]Position, error)
}

func TestPositions(t *testing.T) {
	ctx := context.Background()
	for _, im := range impls(t) {
		t.Run(im.name, func(t *testing.T) {
			h := im.new(t, Config{})
			appendN(t, h.h, "user:a", 0, 3)
			p := h.h.(positioner)
			got, err := p.Positions(ctx, "user:a", Broadcast)
			if err != nil {
				t.Fatal(err)
			}
			a, _ := h.h.Position(ctx, "user:a")
			all, _ := h.h.Position(ctx, Broadcast)
			if len(got) != 2 || got[0] != a || got[1] != all || a.Offset != 3 || all.Epoch == "" || all.Offset != 0 {
				t.Fatalf("Positions = %+v; Position says %+v, %+v", got, a, all)
			}
			if h.redis != nil {
				// Without the script cached, Positions falls back and loads it.
				if err := h.redis.ScriptFlush(ctx).Err(); err != nil {
					t.Fatal(err)
				}
				again, err := p.Positions(ctx, "user:a", Broadcast)
				if err != nil || again[0] != a || again[1] != all {
					t.Fatalf("after SCRIPT FLUSH: %+v, %v", again, err)
				}
			}
			if _, err := p.Positions(ctx, ""); err == nil {
				t.Fatal("an empty stream name is not refused")
			}
			off := im.new(t, Config{Size: -1})
			z, err := off.h.(positioner).Positions(ctx, "user:a", Broadcast)
			if err != nil || z[0] != (Position{}) || z[1] != (Position{}) {
				t.Fatalf("history off: %+v, %v", z, err)
			}
		})
	}
}
