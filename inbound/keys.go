package inbound

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
)

// Partition is the partition of userID's messages among n partitions:
// FNV-1a (32 bit) of the user id, mod n. n below 1 counts as 1.
func Partition(userID string, n int) int {
	if n < 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(userID)) // a hash.Hash never returns an error
	return int(h.Sum32() % uint32(n))
}

// partitionKey is the Redis Stream of partition n: <prefix>in:{n}. The
// braces are a Cluster hash tag: each partition is in the slot of its
// number, so partitions spread over the nodes.
func partitionKey(prefix string, n int) string {
	return prefix + "in:{" + strconv.Itoa(n) + "}"
}

// deadKey is the Redis Stream of dead letters (a slot of its own).
func deadKey(prefix string) string { return prefix + "in:dead" }

// countsKey is the hash of the queue's counters (field "redelivered").
func countsKey(prefix string) string { return prefix + "in:counts" }

// messageID is a message's queue id: its partition and its entry id.
func messageID(partition int, entryID string) string {
	return strconv.Itoa(partition) + "-" + entryID
}

// parseID splits a message id into its partition and entry id. It
// refuses an id that names no partition of n or has no entry id.
func parseID(id string, n int) (int, string, error) {
	ps, entry, ok := strings.Cut(id, "-")
	p, err := strconv.Atoi(ps)
	if !ok || err != nil || p < 0 || p >= n || ps != strconv.Itoa(p) || !validEntryID(entry) {
		return 0, "", fmt.Errorf("%w: %.80q", ErrBadID, id)
	}
	return p, entry, nil
}

// validEntryID reports whether s is a Redis Stream entry id "ms-seq".
func validEntryID(s string) bool {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		return false
	}
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}

// splitEntryID returns the two numbers of a valid entry id.
func splitEntryID(s string) (uint64, uint64) {
	ms, seq, _ := strings.Cut(s, "-")
	a, _ := strconv.ParseUint(ms, 10, 64)
	b, _ := strconv.ParseUint(seq, 10, 64)
	return a, b
}
