package shardkey

import (
	"testing"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// The shard is FNV-1a 32 mod shards (values from the reference
// definition), and a shard's channel carries its tag as the hash tag.
func TestOfAndChannel(t *testing.T) {
	tests := []struct {
		name   string
		user   string
		shards int
		want   int
	}{
		{"empty", "", 16, int(2166136261 % 16)},
		{"a", "a", 16, int(0xe40c292c % 16)},
		{"foobar", "foobar", 1024, int(0xbf9cf968 % 1024)},
		{"one shard", "alice", 1, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Of(tc.user, tc.shards); got != tc.want {
				t.Fatalf("Of(%q, %d) = %d, want %d", tc.user, tc.shards, got, tc.want)
			}
		})
	}
	if got := Channel("sessiongate:events", 7); got != "sessiongate:events:{7}" {
		t.Fatalf("Channel = %q", got)
	}
	if redistest.Slot(Channel("x:events", 3)) != redistest.Slot("h:"+Tag(3)+":s:user:bob") {
		t.Fatal("a shard channel and a key with its tag are in different slots")
	}
}
