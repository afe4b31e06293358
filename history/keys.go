package history

import "strings"

// Redis keys. A stream named s has two keys that share the hash tag {t},
// t being s escaped (see tag), so both are in one hash slot on Redis
// Cluster and the append script may touch both:
//
//	prefix + "h:{" + t + "}"    the Redis Stream of its events
//	prefix + "h:{" + t + "}:m"  a hash: "e" its epoch, "o" its last offset
//
// Should the prefix itself contain a well-formed hash tag, that tag wins:
// both keys still share a slot, but every stream is then in that one slot.

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
