// Package session is sessiongate's session model: the token codec that turns
// a cookie value into a session's public handle, the AES-256-GCM envelope
// that encrypts a session at rest, and the [Store] interface with a Redis
// implementation ([RedisStore]) and an in-process one ([MemoryStore]).
//
// A session is named in three ways:
//
//   - its id: 32 random bytes, known only to the browser (inside the cookie)
//     and never stored, logged or returned by this package;
//   - its token: the cookie value, base64url(id) + "." + base64url(tag), where
//     the tag is an HMAC of the id, so [Codec.Parse] rejects forged cookies
//     without a Redis round trip;
//   - its handle: hex(HMAC-SHA256(handleKey, id)), the public name used in the
//     Redis key, in logs and in the server API. A handle cannot be turned back
//     into a token, so a Redis dump yields no usable cookie.
//
// Stores work by handle only. Every Redis command a store issues touches
// exactly one key, so the stores work unchanged against Redis Cluster.
package session
