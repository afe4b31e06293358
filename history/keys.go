package history

import (
	"strconv"
	"strings"

	"github.com/sessiongate/sessiongate/internal/shardkey"
)

// Redis keys. A stream named s has two keys that share the hash tag {t},
// t being s escaped (see tag), so both are in one hash slot on Redis
// Cluster and the append script may touch both:
//
//	prefix + "h:{" + t + "}"    the Redis Stream of its events
//	prefix + "h:{" + t + "}:m"  a hash: "e" its epoch, "o" its last offset
//
// Should the prefix itself contain a well-formed hash tag, that tag wins:
// both keys still share a slot, but every stream is then in that one slot.
//
// With a sharded bus (Config.Shards > 0) a user stream's keys carry the
// hash tag of the user's shard n instead, the tag of the shard channel its
// events are SPUBLISHed on from the append script:
//
//	prefix + "h:{" + n + "}:s:" + t   the Redis Stream
//	prefix + "h:{" + n + "}:m:" + t   its hash
//
// The trade-off: every user stream of a shard lives in one slot, so the
// histories spread over PUBSUB_SHARDS slots (and the masters serving
// them), not over every slot; more shards spread them finer.

// tag is the hash tag content of stream: never empty (stream names are
// not) and free of braces, so the tag is well-formed whatever the name
// holds. It percent-escapes "{" and "}", and "%" too so that the mapping
// is injective: two stream names never share keys.
func tag(stream string) string {
	if !strings.ContainsAny(stream, "{}%") {
		return stream
	}
	var b strings.Builder
	b.Grow(len(stream) + 8)
	for i := 0; i < len(stream); i++ {
		switch c := stream[i]; c {
		case '%':
			b.WriteString("%25")
		case '{':
			b.WriteString("%7B")
		case '}':
			b.WriteString("%7D")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// streamKey and metaKey are the keys of one stream.
func streamKey(prefix, stream string) string { return prefix + "h:{" + tag(stream) + "}" }
func metaKey(prefix, stream string) string   { return prefix + "h:{" + tag(stream) + "}:m" }

// keyspace is where one stream lives: its two keys, and whether its live
// events go out on a shard channel (the shard's tag is in the keys).
type keyspace struct {
	stream, meta string
	sharded      bool
	shard        int
}

// channel is the shard channel of base for a sharded keyspace.
func (k keyspace) channel(base string) string { return shardkey.Channel(base, k.shard) }

// keys returns the keyspace of stream under r's configuration.
func (r *Redis) keys(stream string) keyspace { return keysOf(r.cfg.Prefix, r.cfg.Shards, stream) }

// keysOf is the keyspace of stream with prefix and shards (0: classic).
func keysOf(prefix string, shards int, stream string) keyspace {
	user, ok := strings.CutPrefix(stream, "user:")
	if shards <= 0 || !ok {
		return keyspace{stream: streamKey(prefix, stream), meta: metaKey(prefix, stream)}
	}
	n := shardkey.Of(user, shards)
	base := prefix + "h:{" + strconv.Itoa(n) + "}:"
	return keyspace{stream: base + "s:" + tag(stream), meta: base + "m:" + tag(stream), sharded: true, shard: n}
}
