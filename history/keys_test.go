package history

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/internal/shardkey"
)

// crc16 is CRC-16/XMODEM, the checksum Redis Cluster maps keys to slots
// with.
func crc16(b string) uint16 {
	var crc uint16
	for i := 0; i < len(b); i++ {
		crc ^= uint16(b[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// hashTag is the part of key Redis Cluster hashes: the content of the
// first "{...}" when it is not empty, else the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

func keySlot(key string) int { return int(crc16(hashTag(key)) % 16384) }

// oddUserIDs are user ids the session store accepts that could break a
// naive hash tag or collide once escaped.
var oddUserIDs = []string{
	"alice", "{", "}", "{}", "}{", "a{b}c", "a}:m", "{user:alice}", "%7B", "%", "%25", "%7D",
	"a/b", "../all", "josé", "Δοκιμή", "日本語", "user:alice", "auth0|{x}", "a b",
}

// TestKeysAreWellFormedAndDistinct checks that each stream's two keys
// share one slot, whose hash tag is the whole escaped stream name, and
// that no two streams share a key.
func TestKeysAreWellFormedAndDistinct(t *testing.T) {
	seen := map[string]string{}
	streams := []string{Broadcast}
	for _, id := range oddUserIDs {
		streams = append(streams, UserStream(id))
	}
	for _, prefix := range []string{"", "sessiongate:", "app/x:"} {
		for _, s := range streams {
			sk, mk := streamKey(prefix, s), metaKey(prefix, s)
			if hashTag(sk) != tag(s) || hashTag(mk) != tag(s) {
				t.Errorf("stream %q: hash tags %q and %q, want %q", s, hashTag(sk), hashTag(mk), tag(s))
			}
			if keySlot(sk) != keySlot(mk) {
				t.Errorf("stream %q: keys in slots %d and %d", s, keySlot(sk), keySlot(mk))
			}
			for _, k := range []string{sk, mk} {
				if other, dup := seen[k]; dup {
					t.Errorf("key %q is used by streams %q and %q", k, other, s)
				}
				seen[k] = s
			}
		}
	}
}

// With shards, a user stream's two keys share the slot of its shard
// channel; no key is used by two streams, sharded or not.
func TestShardedKeysAreWellFormedAndDistinct(t *testing.T) {
	seen := map[string]string{}
	for _, prefix := range []string{"", "sessiongate:"} {
		for _, shards := range []int{0, 1, 16, 1024} {
			for _, id := range append([]string{"m", "s", "a:m"}, oddUserIDs...) {
				s := UserStream(id)
				ks := keysOf(prefix, shards, s)
				if shards > 0 {
					ch := shardkey.Channel(prefix+"events", shardkey.Of(id, shards))
					if keySlot(ks.stream) != keySlot(ch) || keySlot(ks.meta) != keySlot(ch) {
						t.Errorf("%q, %d shards: keys in slots %d, %d; channel %q in %d",
							s, shards, keySlot(ks.stream), keySlot(ks.meta), ch, keySlot(ch))
					}
				}
				for _, k := range []string{ks.stream, ks.meta} {
					who := fmt.Sprintf("%s/%d", s, shards)
					if other, dup := seen[k]; dup && other != who && !strings.HasPrefix(other, s+"/") {
						t.Errorf("key %q is used by %q and %q", k, other, who)
					}
					seen[k] = who
				}
			}
			if ks := keysOf(prefix, shards, Broadcast); ks.sharded || ks.stream != streamKey(prefix, Broadcast) {
				t.Errorf("the broadcast stream is sharded: %+v", ks)
			}
		}
	}
}

// TestKeySlotsMatchRedis checks the test's slot function against a real
// redis-server's CLUSTER KEYSLOT, so the test above is about Redis's rule
// and not only ours.
func TestKeySlotsMatchRedis(t *testing.T) {
	srv := redistest.Start(t, "--cluster-enabled", "yes")
	rdb := newClient(t, srv.Addr())
	for _, id := range oddUserIDs {
		s := UserStream(id)
		for _, k := range []string{streamKey("sessiongate:", s), metaKey("sessiongate:", s)} {
			got, err := rdb.ClusterKeySlot(t.Context(), k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if int(got) != keySlot(k) {
				t.Fatalf("CLUSTER KEYSLOT %q = %d, the test computes %d", k, got, keySlot(k))
			}
		}
	}
	// A key with braces the escaping removes would hash elsewhere: the
	// check can tell.
	raw := "sessiongate:h:{user:a}b}"
	if got := rdb.ClusterKeySlot(t.Context(), raw).Val(); int(got) != keySlot(raw) || hashTag(raw) != "user:a" {
		t.Fatalf("raw key: redis slot %d, test %d, tag %q", got, keySlot(raw), hashTag(raw))
	}
}
