package redistest

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// SlotCheck flags exactly the units a real Redis Cluster refuses with
// CROSSSLOT, and passes the ones it runs.
func TestSlotCheckAgreesWithCluster(t *testing.T) {
	c := StartCluster(t, ClusterOptions{Masters: 1})
	ctx := context.Background()
	tests := []struct {
		name      string
		run       func(rdb redis.UniversalClient) error
		crossSlot bool
	}{
		{name: "script, one hash tag", run: func(rdb redis.UniversalClient) error {
			return rdb.Eval(ctx, "return redis.call('SET', KEYS[1], KEYS[2])", []string{"a:{u1}", "b:{u1}"}).Err()
		}},
		{name: "script, two slots", crossSlot: true, run: func(rdb redis.UniversalClient) error {
			return rdb.Eval(ctx, "return redis.call('SET', KEYS[1], KEYS[2])", []string{"a:{u1}", "b:{u2}"}).Err()
		}},
		{name: "transaction, one hash tag", run: func(rdb redis.UniversalClient) error {
			_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "x:{t}", 1, 0)
				p.SAdd(ctx, "y:{t}", "m")
				return nil
			})
			return err
		}},
		{name: "transaction, two slots", crossSlot: true, run: func(rdb redis.UniversalClient) error {
			_, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, "x:{t1}", 1, 0)
				p.Set(ctx, "x:{t2}", 1, 0)
				return nil
			})
			return err
		}},
		{name: "multi-key command, two slots", crossSlot: true, run: func(rdb redis.UniversalClient) error {
			return rdb.Del(ctx, "k:{t1}", "k:{t2}").Err()
		}},
		{name: "multi-key command, one slot", run: func(rdb redis.UniversalClient) error {
			return rdb.Del(ctx, "k:{t1}", "j:{t1}").Err()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A plain client on the one node sends every unit as it is,
			// as a client of a single Redis would; the node judges it.
			check := &SlotCheck{}
			rdb := redis.NewClient(&redis.Options{Addr: c.Addr()})
			t.Cleanup(func() { _ = rdb.Close() })
			rdb.AddHook(check)
			err := tt.run(rdb)
			refused := err != nil && strings.Contains(err.Error(), "CROSSSLOT")
			if err != nil && !refused {
				t.Fatalf("unexpected error: %v", err)
			}
			if refused != tt.crossSlot {
				t.Fatalf("Redis Cluster CROSSSLOT = %v (err %v), want %v", refused, err, tt.crossSlot)
			}
			if got := len(check.Violations()) > 0; got != tt.crossSlot {
				t.Fatalf("SlotCheck violations %q, want CROSSSLOT %v (units %+v)", check.Violations(), tt.crossSlot, check.Units())
			}
		})
	}
}
