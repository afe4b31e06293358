package redisconn

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// MinVersion is the oldest Redis server sessiongate works with: 6.2, for
// GETDEL (session revocation) and GETEX; scripts use SET KEEPTTL (6.0).
const MinVersion = "6.2.0"

// version is a Redis server version, major.minor.patch.
type version struct{ major, minor, patch int }

func (v version) String() string { return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.patch) }

// less reports whether v is older than w.
func (v version) less(w version) bool {
	if v.major != w.major {
		return v.major < w.major
	}
	if v.minor != w.minor {
		return v.minor < w.minor
	}
	return v.patch < w.patch
}

// parseVersion parses a version as Redis reports it: "7.2.4", "6.2" or
// "7.0.0-rc1" (the suffix is ignored).
func parseVersion(s string) (version, error) {
	core, _, _ := strings.Cut(strings.TrimSpace(s), "-")
	parts := strings.Split(core, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return version{}, fmt.Errorf("redisconn: version %q is not major.minor[.patch]", s)
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(p)
		if err != nil || v < 0 || p == "" || p[0] == '+' {
			return version{}, fmt.Errorf("redisconn: version %q is not major.minor[.patch]", s)
		}
		n[i] = v
	}
	return version{n[0], n[1], n[2]}, nil
}

// versionFromInfo returns the redis_version field of an INFO reply (Valkey
// reports one too, for compatibility), or "" if there is none.
func versionFromInfo(info string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "redis_version:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// serverVersion reads the version of every server the client talks to
// (every node of a Cluster; the master behind Sentinel) and returns the
// oldest. known is false when a server does not say (INFO refused by an
// ACL or renamed, no redis_version field): sessiongate then goes on and
// says so rather than refuse a server that may well be recent. err is a
// failure to ask (network, timeout).
func (m *Manager) serverVersion(ctx context.Context) (v version, known bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.DialTimeout)
	defer cancel()
	var (
		mu     sync.Mutex
		oldest *version
	)
	ask := func(ctx context.Context, c redis.Cmdable) error {
		info, err := c.Info(ctx, "server").Result()
		var rerr redis.Error
		if errors.As(err, &rerr) {
			return nil // refused: this server does not say
		}
		if err != nil {
			return err
		}
		got, perr := parseVersion(versionFromInfo(info))
		if perr != nil {
			return nil // no usable redis_version: this server does not say
		}
		mu.Lock()
		defer mu.Unlock()
		if oldest == nil || got.less(*oldest) {
			oldest = &got
		}
		return nil
	}
	if cc, ok := m.client.(*redis.ClusterClient); ok {
		err = cc.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error { return ask(ctx, c) })
	} else {
		err = ask(ctx, m.client)
	}
	if err != nil {
		return version{}, false, err
	}
	if oldest == nil {
		return version{}, false, nil
	}
	// A node that does not say is not held against the ones that do: the
	// oldest known version decides.
	return *oldest, true, nil
}

// checkVersion fails with [ErrUnsupportedVersion] when a server is older
// than [MinVersion]. It returns the oldest version seen ("" if unknown).
func (m *Manager) checkVersion(ctx context.Context) (string, error) {
	v, known, err := m.serverVersion(ctx)
	if err != nil {
		return "", err
	}
	if !known {
		m.log.Warn("redis version unknown", zap.String("reason", "INFO server refused or without redis_version"),
			zap.String("min_version", MinVersion))
		return "", nil
	}
	minV, _ := parseVersion(MinVersion)
	if v.less(minV) {
		return v.String(), fmt.Errorf("%w: %s runs Redis %s; sessiongate needs Redis >= %s (GETDEL, GETEX)", ErrUnsupportedVersion, m.redacted, v, MinVersion)
	}
	return v.String(), nil
}
