package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// generationSuffix names the key, under the store's prefix, that holds the
// data set's generation.
const generationSuffix = "generation"

// newGeneration returns a fresh random generation id.
func newGeneration() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (Go 1.24+).
	return hex.EncodeToString(b[:])
}

// Generation implements [Store]. The id lives in prefix+"generation", a key
// with no TTL that the first call creates (SET NX, so instances racing on an
// empty Redis agree on one). A Redis that lost its data (a restart without
// persistence, FLUSHALL, a failover to an empty replica) lost this key too,
// so the next call creates a new id. One key: Redis Cluster safe.
func (r *RedisStore) Generation(ctx context.Context) (string, error) {
	key := r.opts.Prefix + generationSuffix
	for range 3 {
		g, err := r.rdb.Get(ctx, key).Result()
		if err == nil {
			return g, nil
		}
		if !errors.Is(err, redis.Nil) {
			return "", fmt.Errorf("session: generation: %w", err)
		}
		fresh := newGeneration()
		ok, err := r.rdb.SetNX(ctx, key, fresh, 0).Result()
		if err != nil {
			return "", fmt.Errorf("session: generation: %w", err)
		}
		if ok {
			return fresh, nil
		}
		// Another instance created it between our GET and SET NX: read
		// theirs (again, in the unlikely case it vanished meanwhile).
	}
	return "", errors.New("session: generation: key keeps vanishing")
}

// Generation implements [Store]: a memory store's data set lives and dies
// with the process, so its generation is fixed at construction.
func (m *MemoryStore) Generation(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	return m.generation, nil
}
