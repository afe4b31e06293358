// Package shardkey maps a user to one of a fixed number of shards, the
// rule the sharded event bus (pubsub) and the history (history) share on
// Redis Cluster: a user's events travel on the shard channel
// `<channel>:{n}` and the user's history keys carry the same hash tag
// `{n}`, so the history script and its SPUBLISH are in one slot.
package shardkey

import (
	"hash/fnv"
	"strconv"
)

// Of returns the shard of userID among shards: FNV-1a (32 bits) of the id,
// modulo shards. shards must be positive.
func Of(userID string, shards int) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(userID)) // never fails
	return int(h.Sum32() % uint32(shards))
}

// Tag is the hash tag of shard n: "{n}".
func Tag(n int) string { return "{" + strconv.Itoa(n) + "}" }

// Channel is the shard channel n of the classic channel base:
// base + ":{n}" (for the gateway, "<prefix>events:{n}").
func Channel(base string, n int) string { return base + ":" + Tag(n) }
