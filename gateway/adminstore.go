package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// adminSession is what the gateway keeps of one admin console login. The
// session id (the cookie's value) is not in it: the store is keyed by a
// hash of the id, so a Redis dump yields no usable cookie.
type adminSession struct {
	// CSRF is the token every state-changing request of this session
	// must carry in the X-CSRF-Token header.
	CSRF string `json:"csrf"`
	// Key names the API key the operator logged in with (a hash of it,
	// see [adminKeyID]): removing that key from GATEWAY_API_KEYS ends the
	// session.
	Key string `json:"key"`
	// Created and Expires are Unix milliseconds.
	Created int64 `json:"created"`
	Expires int64 `json:"expires"`
}

func (a adminSession) expiresAt() time.Time { return time.UnixMilli(a.Expires) }

// adminStore keeps admin sessions by the hash of their id. Redis mode
// shares them between instances, so a console behind a load balancer
// without sticky sessions stays logged in whichever instance answers, and
// a logout on one instance ends the session on all of them.
type adminStore interface {
	put(ctx context.Context, key string, a adminSession, ttl time.Duration) error
	// get returns ok=false for a missing or expired session.
	get(ctx context.Context, key string) (adminSession, bool, error)
	del(ctx context.Context, key string) error
}

// adminStoreKey is the store key of a session id: the hex SHA-256 of the
// id under a label of its own. The id is 32 random bytes, so the hash needs
// no secret to be irreversible.
func adminStoreKey(id []byte) string {
	h := sha256.New()
	h.Write([]byte("sessiongate admin session\x00"))
	h.Write(id)
	return hex.EncodeToString(h.Sum(nil))
}

// adminKeyID names an API key without revealing it: 16 hex characters of
// a labelled SHA-256 of the key.
func adminKeyID(key string) string {
	sum := sha256.Sum256([]byte("sessiongate admin key\x00" + key))
	return hex.EncodeToString(sum[:8])
}

// redisAdminStore keeps each admin session in one Redis key (prefix +
// "admin:" + hash) whose TTL is the session's remaining lifetime: one key
// per command, Redis Cluster safe.
type redisAdminStore struct {
	rdb    redis.UniversalClient
	prefix string
}

func (s redisAdminStore) key(k string) string { return s.prefix + "admin:" + k }

func (s redisAdminStore) put(ctx context.Context, key string, a adminSession, ttl time.Duration) error {
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	if err := s.rdb.Set(ctx, s.key(key), b, ttl).Err(); err != nil {
		return fmt.Errorf("admin session store: %w", err)
	}
	return nil
}

func (s redisAdminStore) get(ctx context.Context, key string) (adminSession, bool, error) {
	b, err := s.rdb.Get(ctx, s.key(key)).Bytes()
	if errors.Is(err, redis.Nil) {
		return adminSession{}, false, nil
	}
	if err != nil {
		return adminSession{}, false, fmt.Errorf("admin session store: %w", err)
	}
	var a adminSession
	if err := json.Unmarshal(b, &a); err != nil {
		return adminSession{}, false, nil // unreadable: no session
	}
	return a, true, nil
}

func (s redisAdminStore) del(ctx context.Context, key string) error {
	if err := s.rdb.Del(ctx, s.key(key)).Err(); err != nil {
		return fmt.Errorf("admin session store: %w", err)
	}
	return nil
}

// maxMemoryAdminSessions bounds the memory store: logins are rate limited
// per address, but many addresses could still fill it.
const maxMemoryAdminSessions = 10_000

// errAdminStoreFull refuses a login when the memory store is full of live
// sessions.
var errAdminStoreFull = errors.New("admin session store full")

// memoryAdminStore keeps admin sessions in this process (embedded mode):
// they end with it and are not seen by other instances.
type memoryAdminStore struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]adminSession
}

func newMemoryAdminStore(now func() time.Time) *memoryAdminStore {
	return &memoryAdminStore{now: now, m: map[string]adminSession{}}
}

func (s *memoryAdminStore) put(_ context.Context, key string, a adminSession, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= maxMemoryAdminSessions {
		now := s.now()
		for k, v := range s.m {
			if !now.Before(v.expiresAt()) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= maxMemoryAdminSessions {
			return errAdminStoreFull
		}
	}
	s.m[key] = a
	return nil
}

func (s *memoryAdminStore) get(_ context.Context, key string) (adminSession, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.m[key]
	if ok && !s.now().Before(a.expiresAt()) {
		delete(s.m, key)
		return adminSession{}, false, nil
	}
	return a, ok, nil
}

func (s *memoryAdminStore) del(_ context.Context, key string) error {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
	return nil
}
