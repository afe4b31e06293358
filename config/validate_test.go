package config

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// TestValidationRules drives every rule through Load: one bad setting per
// case, on top of a valid development or production environment.
func TestValidationRules(t *testing.T) {
	dev := map[string]string{}
	prod := prodEnv()
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // substring of the error; "" means valid
	}{
		// Valid configurations.
		{name: "development defaults valid", env: dev},
		{name: "production valid", env: prod},
		{name: "production without api keys valid", env: with(prod, "GATEWAY_API_KEYS=")},
		{name: "production with redis cluster valid", env: with(prod, "USE_REDIS_SESSIONS=true", "REDIS_ADDRS=a:7000,b:7001")},
		{name: "samesite none in production valid", env: with(prod, "COOKIE_SAMESITE=none")},
		{name: "samesite none with forced secure valid", env: with(dev, "COOKIE_SAMESITE=none", "COOKIE_SECURE=true")},
		{name: "dev cookie domain valid", env: with(dev, "COOKIE_DOMAIN=.example.com")},
		{name: "short api key allowed in dev", env: with(dev, "GATEWAY_API_KEYS=short")},
		{name: "example secrets allowed in dev", env: with(dev, "SESSION_SECRET="+ExampleSessionSecret, "SESSION_ENCRYPTION_KEY="+ExampleEncryptionKey)},
		{name: "message size bounds valid", env: with(dev, "WS_MAX_MESSAGE_BYTES=512")},
		{name: "message size upper bound valid", env: with(dev, "WS_MAX_MESSAGE_BYTES=16777216")},
		{name: "addr with host valid", env: with(dev, "GATEWAY_ADDR=127.0.0.1:0")},
		{name: "debug addr on loopback valid", env: with(dev, "GATEWAY_DEBUG_ADDR=127.0.0.1:6060")},
		{name: "debug addr on localhost valid", env: with(prod, "GATEWAY_DEBUG_ADDR=localhost:6060")},
		{name: "debug addr public", env: with(dev, "GATEWAY_DEBUG_ADDR=0.0.0.0:6060"), want: "GATEWAY_DEBUG_ADDR must be a loopback host:port"},
		{name: "debug addr without host", env: with(dev, "GATEWAY_DEBUG_ADDR=:6060"), want: "GATEWAY_DEBUG_ADDR must be a loopback host:port"},
		{name: "debug addr garbage", env: with(dev, "GATEWAY_DEBUG_ADDR=nope"), want: "GATEWAY_DEBUG_ADDR must be a loopback host:port"},
		{name: "session cache off valid", env: with(dev, "SESSION_CACHE_TTL=0")},
		{name: "session cache at the touch interval valid", env: with(dev, "SESSION_CACHE_TTL=1m")},
		{name: "session cache negative", env: with(dev, "SESSION_CACHE_TTL=-1s"), want: "SESSION_CACHE_TTL must be 0 (off) or positive"},
		{name: "session cache past the touch interval", env: with(dev, "SESSION_CACHE_TTL=2m", "SESSION_TOUCH_INTERVAL=90s"), want: "SESSION_CACHE_TTL (2m0s) must not exceed SESSION_TOUCH_INTERVAL"},
		{name: "session cache past the tombstones", env: with(dev, "SESSION_CACHE_TTL=2m", "SESSION_TOUCH_INTERVAL=5m", "RECONCILE_INTERVAL=10s"), want: "must not exceed the revocation tombstones' lifetime"},

		// Production refusals.
		{name: "production missing secret", env: with(prod, "SESSION_SECRET="), want: "SESSION_SECRET is required"},
		{name: "production missing key", env: with(prod, "SESSION_ENCRYPTION_KEY="), want: "SESSION_ENCRYPTION_KEY is required"},
		{name: "production example secret", env: with(prod, "SESSION_SECRET="+ExampleSessionSecret), want: "SESSION_SECRET is the example value"},
		{name: "production example key", env: with(prod, "SESSION_ENCRYPTION_KEY="+ExampleEncryptionKey), want: "SESSION_ENCRYPTION_KEY key 1 is the example value"},
		{name: "production example key second in list", env: with(prod, "SESSION_ENCRYPTION_KEY="+testKey+","+ExampleEncryptionKey), want: "key 2 is the example value"},
		{name: "production short secret", env: with(prod, "SESSION_SECRET=too-short"), want: "SESSION_SECRET must be at least 32 bytes in production; got 9"},
		{name: "production auth dev", env: with(prod, "AUTH_MODE=dev"), want: "AUTH_MODE=dev accepts any user id and is refused in production"},
		{name: "production short api key", env: with(prod, "GATEWAY_API_KEYS="+testAPIKey+",shortkey"), want: "GATEWAY_API_KEYS key 2 of 2 is 8 characters; production needs at least 16"},
		{name: "production cookie domain", env: with(prod, "COOKIE_DOMAIN=example.com"), want: "COOKIE_DOMAIN must be empty in production"},
		{name: "production cookie secure false", env: with(prod, "COOKIE_SECURE=false"), want: "COOKIE_SECURE cannot be false in production"},
		{name: "production webhook url missing", env: with(prod, "AUTH_WEBHOOK_URL="), want: "AUTH_WEBHOOK_URL is required with AUTH_MODE=webhook"},

		// Keys (any environment).
		{name: "key too short", env: with(dev, "SESSION_ENCRYPTION_KEY=0123456789ab"), want: "SESSION_ENCRYPTION_KEY must be 64 hex characters (32 bytes); got 12 characters"},
		{name: "key not hex", env: with(dev, "SESSION_ENCRYPTION_KEY="+strings.Repeat("zz", 32)), want: "SESSION_ENCRYPTION_KEY must be hexadecimal"},
		{name: "second key too long", env: with(dev, "SESSION_ENCRYPTION_KEY="+testKey+","+testKey+"00"), want: "SESSION_ENCRYPTION_KEY key 2 of 2 must be 64 hex characters (32 bytes); got 66 characters"},
		{name: "empty key in list", env: with(dev, "SESSION_ENCRYPTION_KEY="+testKey+",,"+testKey2), want: "key 2 of 3 must be 64 hex characters (32 bytes); got 0 characters"},
		{name: "duplicate key", env: with(dev, "SESSION_ENCRYPTION_KEY="+testKey+","+testKey), want: "lists the same key twice (keys 1 and 2)"},

		// Gateway.
		{name: "bad env", env: with(dev, "GATEWAY_ENV=staging"), want: `GATEWAY_ENV must be "development" or "production"; got "staging"`},
		{name: "addr without port", env: with(dev, "GATEWAY_ADDR=8080"), want: `GATEWAY_ADDR must be host:port or :port`},
		{name: "addr bad port", env: with(dev, "GATEWAY_ADDR=:http-alt"), want: `GATEWAY_ADDR must be host:port or :port`},
		{name: "addr port out of range", env: with(dev, "GATEWAY_ADDR=:70000"), want: `GATEWAY_ADDR must be host:port or :port`},
		{name: "instance id with space", env: with(dev, "GATEWAY_INSTANCE_ID=my host"), want: "GATEWAY_INSTANCE_ID must be 1-64 characters"},
		{name: "instance id too long", env: with(dev, "GATEWAY_INSTANCE_ID="+strings.Repeat("a", 65)), want: "GATEWAY_INSTANCE_ID must be 1-64 characters"},
		{name: "api key with control char", env: with(dev, "GATEWAY_API_KEYS=abc\tdef"), want: "GATEWAY_API_KEYS key 1 of 1 contains spaces"},
		{name: "origin with path", env: with(dev, "GATEWAY_ALLOWED_ORIGINS=https://a.test/"), want: "GATEWAY_ALLOWED_ORIGINS entry 1 must be an origin"},
		{name: "origin without scheme", env: with(dev, "GATEWAY_ALLOWED_ORIGINS=https://ok.test,a.test"), want: "GATEWAY_ALLOWED_ORIGINS entry 2 must be an origin"},
		{name: "origin ws scheme", env: with(dev, "GATEWAY_ALLOWED_ORIGINS=ws://a.test"), want: "GATEWAY_ALLOWED_ORIGINS entry 1"},
		{name: "origin wildcard", env: with(dev, "GATEWAY_ALLOWED_ORIGINS=*"), want: "GATEWAY_ALLOWED_ORIGINS entry 1"},
		{name: "origin bad port", env: with(dev, "GATEWAY_ALLOWED_ORIGINS=http://a.test:99999"), want: "GATEWAY_ALLOWED_ORIGINS entry 1"},
		{name: "origin with query", env: with(dev, "GATEWAY_ALLOWED_ORIGINS=http://a.test?x=1"), want: "GATEWAY_ALLOWED_ORIGINS entry 1"},
		{name: "bad trust proxy bool", env: with(dev, "GATEWAY_TRUST_PROXY=maybe"), want: `GATEWAY_TRUST_PROXY must be true or false; got "maybe"`},
		{name: "trusted proxies valid in production", env: with(prod, "GATEWAY_TRUSTED_PROXIES=10.0.3.0/28,10.0.4.7,fd00::/8")},
		{name: "trusted proxy not an address", env: with(dev, "GATEWAY_TRUSTED_PROXIES=10.0.0.1,lb.internal"), want: `GATEWAY_TRUSTED_PROXIES entry 2 must be an IP address or a CIDR`},
		{name: "trusted proxy bad prefix length", env: with(dev, "GATEWAY_TRUSTED_PROXIES=10.0.0.0/33"), want: `GATEWAY_TRUSTED_PROXIES entry 1 must be an IP address or a CIDR`},
		{name: "trusted proxy with port", env: with(dev, "GATEWAY_TRUSTED_PROXIES=10.0.0.1:80"), want: `GATEWAY_TRUSTED_PROXIES entry 1 must be an IP address or a CIDR`},
		{name: "trusted proxy host bits set", env: with(dev, "GATEWAY_TRUSTED_PROXIES=10.0.0.1/8"), want: `GATEWAY_TRUSTED_PROXIES entry 1 has bits set after the prefix length (write 10.0.0.0/8`},
		{name: "trusted proxy ipv4-mapped", env: with(dev, "GATEWAY_TRUSTED_PROXIES=::ffff:10.0.0.1"), want: `GATEWAY_TRUSTED_PROXIES entry 1 must write an IPv4 address in dotted form`},
		{name: "trust everyone allowed in development", env: with(dev, "GATEWAY_TRUSTED_PROXIES=0.0.0.0/0")},
		{name: "trust every ipv4 refused in production", env: with(prod, "GATEWAY_TRUSTED_PROXIES=10.0.0.1,0.0.0.0/0"), want: "GATEWAY_TRUSTED_PROXIES must not contain 0.0.0.0/0 in production"},
		{name: "trust every ipv6 refused in production", env: with(prod, "GATEWAY_TRUSTED_PROXIES=::/0"), want: "GATEWAY_TRUSTED_PROXIES must not contain ::/0 in production"},
		{name: "deprecated trust proxy refused in production", env: with(prod, "GATEWAY_TRUST_PROXY=true"), want: "GATEWAY_TRUST_PROXY=true trusts X-Forwarded-For from every loopback and private address and is refused in production"},
		{name: "deprecated trust proxy with a list", env: with(dev, "GATEWAY_TRUST_PROXY=true", "GATEWAY_TRUSTED_PROXIES=10.0.0.1"), want: "GATEWAY_TRUST_PROXY=true and GATEWAY_TRUSTED_PROXIES are both set"},
		{name: "deprecated trust proxy false in production valid", env: with(prod, "GATEWAY_TRUST_PROXY=false")},
		{name: "metrics addr loopback valid", env: with(prod, "GATEWAY_METRICS_ADDR=127.0.0.1:9090")},
		{name: "metrics addr all interfaces valid", env: with(dev, "GATEWAY_METRICS_ADDR=:9090")},
		{name: "metrics addr without port", env: with(dev, "GATEWAY_METRICS_ADDR=9090"), want: `GATEWAY_METRICS_ADDR must be host:port or :port`},
		{name: "metrics addr bad port", env: with(dev, "GATEWAY_METRICS_ADDR=:metrics"), want: `GATEWAY_METRICS_ADDR must be host:port or :port`},
		{name: "demo bad bool", env: with(prod, "DEMO_ENABLED=sometimes"), want: `DEMO_ENABLED must be true or false; got "sometimes"`},

		// Logging.
		{name: "bad log level", env: with(dev, "LOG_LEVEL=verbose"), want: `LOG_LEVEL must be debug, info, warn or error; got "verbose"`},
		{name: "bad log format", env: with(dev, "LOG_FORMAT=xml"), want: `LOG_FORMAT must be console or json; got "xml"`},

		// Redis.
		{name: "bad use redis bool", env: with(dev, "USE_REDIS_SESSIONS=sure"), want: "USE_REDIS_SESSIONS must be true or false"},
		{name: "redis url scheme", env: with(dev, "REDIS_URL=http://:hunter2@r:6379"), want: "REDIS_URL must be a redis:// or rediss:// URL"},
		{name: "redis url unparsable", env: with(dev, "REDIS_URL=redis://:hunter2@r:port"), want: "REDIS_URL must be a redis:// or rediss:// URL"},
		{name: "redis url db path", env: with(dev, "REDIS_URL=redis://r:6379/db1"), want: "REDIS_URL path must be a database number"},
		{name: "redis url option the client refuses (fuzz)", env: with(dev, "REDIS_URL=redis:?0"), want: "REDIS_URL is not accepted by the Redis client"},
		{name: "redis url unknown option", env: with(dev, "REDIS_URL=redis://:hunter2@r:6379/0?bogus_option=1"), want: "REDIS_URL is not accepted by the Redis client"},
		{name: "redis host with port", env: with(dev, "REDIS_HOST=r:6379"), want: "REDIS_HOST must be a host name or IP address without port"},
		{name: "redis port text", env: with(dev, "REDIS_PORT=redis"), want: `REDIS_PORT must be a port number 1-65535; got "redis"`},
		{name: "redis port zero", env: with(dev, "REDIS_PORT=0"), want: "REDIS_PORT must be a port number 1-65535"},
		{name: "redis db negative", env: with(dev, "REDIS_DB=-1"), want: `REDIS_DB must be a database number 0 or more; got "-1"`},
		{name: "redis addrs entry", env: with(dev, "REDIS_ADDRS=a:7000,b"), want: `REDIS_ADDRS entry 2 must be host:port; got "b"`},
		{name: "redis master without addrs", env: with(dev, "REDIS_MASTER_NAME=mymaster"), want: "REDIS_MASTER_NAME is set, so REDIS_SENTINEL_ADDRS must list the Sentinel addresses"},
		{name: "redis sentinel addrs and addrs", env: with(dev, "REDIS_SENTINEL_ADDRS=s1:26379", "REDIS_ADDRS=a:7000", "REDIS_MASTER_NAME=m"), want: "REDIS_SENTINEL_ADDRS and REDIS_ADDRS are both set"},
		{name: "redis sentinel addrs without master", env: with(dev, "REDIS_SENTINEL_ADDRS=s1:26379,s2:26379"), want: "REDIS_SENTINEL_ADDRS is set, so REDIS_MASTER_NAME must name the master"},
		{name: "redis sentinel addrs entry", env: with(dev, "REDIS_SENTINEL_ADDRS=s1:26379,s2", "REDIS_MASTER_NAME=m"), want: `REDIS_SENTINEL_ADDRS (or REDIS_ADDRS) entry 2 must be host:port; got "s2"`},
		{name: "redis sentinel password without sentinel", env: with(dev, "REDIS_SENTINEL_PASSWORD=hunter2"), want: "REDIS_SENTINEL_USERNAME and REDIS_SENTINEL_PASSWORD apply to Sentinel only"},
		{name: "redis url failover form", env: with(dev, "REDIS_URL=redis://:hunter2@s1:26379/0?master_name=m&addr=s2:26379"), want: "REDIS_URL cannot describe Sentinel"},
		{name: "redis cluster with db", env: with(dev, "REDIS_ADDRS=a:7000,b:7001", "REDIS_DB=2"), want: "REDIS_DB must be 0 with Redis Cluster"},
		{name: "redis attempts zero", env: with(dev, "REDIS_CONNECT_ATTEMPTS=0"), want: "REDIS_CONNECT_ATTEMPTS must be at least 1; got 0"},
		{name: "redis attempts text", env: with(dev, "REDIS_CONNECT_ATTEMPTS=ten"), want: `REDIS_CONNECT_ATTEMPTS must be a whole number; got "ten"`},
		{name: "redis backoff min zero", env: with(dev, "REDIS_BACKOFF_MIN=0s"), want: "REDIS_BACKOFF_MIN must be positive"},
		{name: "redis backoff order", env: with(dev, "REDIS_BACKOFF_MIN=5s", "REDIS_BACKOFF_MAX=1s"), want: "REDIS_BACKOFF_MAX (1s) must not be shorter than REDIS_BACKOFF_MIN (5s)"},
		{name: "redis backoff max huge", env: with(dev, "REDIS_BACKOFF_MAX=1h"), want: "REDIS_BACKOFF_MAX must be at most 10m"},
		{name: "redis backoff not duration", env: with(dev, "REDIS_BACKOFF_MIN=5"), want: `REDIS_BACKOFF_MIN must be a duration such as "90s"`},
		{name: "key prefix with space", env: with(dev, "REDIS_KEY_PREFIX=my app:"), want: "REDIS_KEY_PREFIX must be 1-64 characters without spaces"},

		// Sessions.
		{name: "idle ttl not duration", env: with(dev, "SESSION_IDLE_TTL=1d"), want: `SESSION_IDLE_TTL must be a duration such as "90s", "5m" or "24h"; got "1d"`},
		{name: "idle ttl too short", env: with(dev, "SESSION_IDLE_TTL=500ms"), want: "SESSION_IDLE_TTL must be at least 1s"},
		{name: "lifetime zero", env: with(dev, "SESSION_LIFETIME=0s"), want: "SESSION_LIFETIME must be at least 1s"},
		{name: "touch interval zero", env: with(dev, "SESSION_TOUCH_INTERVAL=0s"), want: "SESSION_TOUCH_INTERVAL must be a positive duration"},
		{name: "touch interval not below idle ttl", env: with(dev, "SESSION_IDLE_TTL=1m", "SESSION_TOUCH_INTERVAL=1m"), want: "SESSION_TOUCH_INTERVAL (1m0s) must be shorter than SESSION_IDLE_TTL (1m0s)"},

		// Cookies.
		{name: "cookie name with space", env: with(dev, "COOKIE_NAME=my session"), want: "COOKIE_NAME must be 1-64 characters"},
		{name: "cookie name with host prefix", env: with(dev, "COOKIE_NAME=__Host-sid"), want: "COOKIE_NAME must not start with __Host- or __Secure-"},
		{name: "cookie domain with scheme", env: with(dev, "COOKIE_DOMAIN=https://example.com"), want: "COOKIE_DOMAIN must be a domain name"},
		{name: "samesite bad", env: with(dev, "COOKIE_SAMESITE=always"), want: `COOKIE_SAMESITE must be lax, strict or none; got "always"`},
		{name: "samesite none without secure", env: with(dev, "COOKIE_SAMESITE=none"), want: "COOKIE_SAMESITE=none requires Secure cookies"},
		{name: "cookie secure bad bool", env: with(dev, "COOKIE_SECURE=2"), want: "COOKIE_SECURE must be true or false"},

		// Auth.
		{name: "auth mode bad", env: with(dev, "AUTH_MODE=ldap"), want: `AUTH_MODE must be dev or webhook; got "ldap"`},
		{name: "webhook without url in dev", env: with(dev, "AUTH_MODE=webhook"), want: "AUTH_WEBHOOK_URL is required with AUTH_MODE=webhook"},
		{name: "webhook url scheme", env: with(prod, "AUTH_WEBHOOK_URL=ftp://auth/login"), want: "AUTH_WEBHOOK_URL must be an http:// or https:// URL with a host"},
		{name: "webhook url no host", env: with(prod, "AUTH_WEBHOOK_URL=https:///login"), want: "AUTH_WEBHOOK_URL must be an http:// or https:// URL with a host"},
		{name: "webhook http refused in production", env: with(prod, "AUTH_WEBHOOK_URL=http://auth.internal/login"), want: "AUTH_WEBHOOK_URL must be an https:// URL in production"},
		{name: "webhook http on loopback refused in production", env: with(prod, "AUTH_WEBHOOK_URL=http://127.0.0.1:9000/login"), want: "AUTH_WEBHOOK_URL must be an https:// URL in production"},
		{name: "webhook https in production valid", env: with(prod, "AUTH_WEBHOOK_URL=https://auth.internal:8443/login?key=k")},
		{name: "webhook upper-case https in production valid", env: with(prod, "AUTH_WEBHOOK_URL=HTTPS://auth.internal/login")},
		{name: "webhook http in development valid", env: with(dev, "AUTH_MODE=webhook", "AUTH_WEBHOOK_URL=http://127.0.0.1:9000/login")},
		{name: "webhook timeout negative", env: with(dev, "AUTH_WEBHOOK_TIMEOUT=-1s"), want: "AUTH_WEBHOOK_TIMEOUT must be a positive duration"},

		// WebSocket.
		{name: "message size too small", env: with(dev, "WS_MAX_MESSAGE_BYTES=511"), want: "WS_MAX_MESSAGE_BYTES must be between 512 and 16777216 (16MiB); got 511"},
		{name: "message size too large", env: with(dev, "WS_MAX_MESSAGE_BYTES=16777217"), want: "WS_MAX_MESSAGE_BYTES must be between 512 and 16777216"},
		{name: "message size text", env: with(dev, "WS_MAX_MESSAGE_BYTES=32k"), want: `WS_MAX_MESSAGE_BYTES must be a whole number; got "32k"`},
		{name: "send queue zero", env: with(dev, "WS_SEND_QUEUE=0"), want: "WS_SEND_QUEUE must be between 1 and 65536; got 0"},
		{name: "send queue overflow", env: with(dev, "WS_SEND_QUEUE=99999999999"), want: "WS_SEND_QUEUE is out of range"},
		{name: "ping interval zero", env: with(dev, "WS_PING_INTERVAL=0s"), want: "WS_PING_INTERVAL must be a positive duration"},
		{name: "pong timeout zero", env: with(dev, "WS_PONG_TIMEOUT=0s"), want: "WS_PONG_TIMEOUT must be a positive duration"},
		{name: "write timeout negative", env: with(dev, "WS_WRITE_TIMEOUT=-5s"), want: "WS_WRITE_TIMEOUT must be a positive duration"},

		// HTTP server.
		{name: "http timeouts valid", env: with(dev, "HTTP_READ_TIMEOUT=5m", "HTTP_WRITE_TIMEOUT=5m", "HTTP_IDLE_TIMEOUT=1h")},
		{name: "http read timeout zero", env: with(dev, "HTTP_READ_TIMEOUT=0s"), want: "HTTP_READ_TIMEOUT must be a positive duration"},
		{name: "http write timeout negative", env: with(dev, "HTTP_WRITE_TIMEOUT=-1s"), want: "HTTP_WRITE_TIMEOUT must be a positive duration"},
		{name: "http idle timeout zero", env: with(dev, "HTTP_IDLE_TIMEOUT=0s"), want: "HTTP_IDLE_TIMEOUT must be a positive duration"},
		{name: "http read timeout too long", env: with(dev, "HTTP_READ_TIMEOUT=6m"), want: "HTTP_READ_TIMEOUT must be at most 5m0s"},
		{name: "http write timeout too long", env: with(prod, "HTTP_WRITE_TIMEOUT=1h"), want: "HTTP_WRITE_TIMEOUT must be at most 5m0s"},
		{name: "http idle timeout too long", env: with(dev, "HTTP_IDLE_TIMEOUT=2h"), want: "HTTP_IDLE_TIMEOUT must be at most 1h0m0s"},
		{name: "http read timeout not duration", env: with(dev, "HTTP_READ_TIMEOUT=10"), want: `HTTP_READ_TIMEOUT must be a duration such as "90s"`},
		{name: "write timeout not above webhook timeout", env: with(prod, "AUTH_WEBHOOK_TIMEOUT=15s", "HTTP_WRITE_TIMEOUT=15s"), want: "HTTP_WRITE_TIMEOUT (15s) must be longer than AUTH_WEBHOOK_TIMEOUT (15s)"},
		{name: "long webhook timeout ignored in dev auth", env: with(dev, "AUTH_WEBHOOK_TIMEOUT=30s")},

		// Limits and lifecycle.
		{name: "rps zero turns the limit off", env: with(dev, "RATE_LIMIT_RPS=0")},
		{name: "rps negative", env: with(dev, "RATE_LIMIT_RPS=-1"), want: "RATE_LIMIT_RPS must be a positive number, or 0 to turn the limit off; got -1"},
		{name: "rps NaN", env: with(dev, "RATE_LIMIT_RPS=NaN"), want: `RATE_LIMIT_RPS must be a number such as 20 or 0.5; got "NaN"`},
		{name: "burst zero", env: with(dev, "RATE_LIMIT_BURST=0"), want: "RATE_LIMIT_BURST must be at least 1; got 0"},
		{name: "no connection caps in development valid", env: with(dev, "WS_MAX_CONNECTIONS=0", "WS_MAX_CONNECTIONS_PER_USER=0", "WS_MAX_CONNECTIONS_PER_SESSION=0", "WS_INBOUND_RATE=0")},
		{name: "fractional inbound rate valid", env: with(prod, "WS_INBOUND_RATE=0.5", "WS_INBOUND_BURST=1")},
		{name: "instance cap negative", env: with(dev, "WS_MAX_CONNECTIONS=-1"), want: "WS_MAX_CONNECTIONS must be between 0 (no cap) and 10000000; got -1"},
		{name: "user cap huge", env: with(dev, "WS_MAX_CONNECTIONS_PER_USER=20000000", "WS_MAX_CONNECTIONS=0"), want: "WS_MAX_CONNECTIONS_PER_USER must be between 0 (no cap) and 10000000; got 20000000"},
		{name: "session cap text", env: with(dev, "WS_MAX_CONNECTIONS_PER_SESSION=many"), want: `WS_MAX_CONNECTIONS_PER_SESSION must be a whole number; got "many"`},
		{name: "session cap over user cap", env: with(dev, "WS_MAX_CONNECTIONS_PER_USER=4", "WS_MAX_CONNECTIONS_PER_SESSION=8"), want: "WS_MAX_CONNECTIONS_PER_SESSION (8) must not exceed WS_MAX_CONNECTIONS_PER_USER (4)"},
		{name: "user cap over instance cap", env: with(dev, "WS_MAX_CONNECTIONS=10", "WS_MAX_CONNECTIONS_PER_SESSION=5"), want: "WS_MAX_CONNECTIONS_PER_USER (64) must not exceed WS_MAX_CONNECTIONS (10)"},
		{name: "production instance cap off", env: with(prod, "WS_MAX_CONNECTIONS=0"), want: "WS_MAX_CONNECTIONS=0 (no cap) is refused in production"},
		{name: "production user cap off", env: with(prod, "WS_MAX_CONNECTIONS_PER_USER=0"), want: "WS_MAX_CONNECTIONS_PER_USER=0 (no cap) is refused in production"},
		{name: "production session cap off", env: with(prod, "WS_MAX_CONNECTIONS_PER_SESSION=0"), want: "WS_MAX_CONNECTIONS_PER_SESSION=0 (no cap) is refused in production"},
		{name: "production inbound rate off", env: with(prod, "WS_INBOUND_RATE=0"), want: "WS_INBOUND_RATE=0 (no limit) is refused in production"},
		{name: "inbound rate negative", env: with(dev, "WS_INBOUND_RATE=-2"), want: "WS_INBOUND_RATE must be a number of messages per second between 0 (no limit) and 1000000; got -2"},
		{name: "inbound rate Inf", env: with(dev, "WS_INBOUND_RATE=+Inf"), want: `WS_INBOUND_RATE must be a number such as 20 or 0.5; got "+Inf"`},
		{name: "inbound burst zero", env: with(dev, "WS_INBOUND_BURST=0"), want: "WS_INBOUND_BURST must be between 1 and 1000000; got 0"},
		{name: "drain window zero", env: with(dev, "DRAIN_WINDOW=0s"), want: "DRAIN_WINDOW must be a positive duration"},
		{name: "shutdown timeout zero", env: with(dev, "SHUTDOWN_TIMEOUT=0s"), want: "SHUTDOWN_TIMEOUT must be a positive duration"},
		{name: "drain not below shutdown", env: with(dev, "DRAIN_WINDOW=30s", "SHUTDOWN_TIMEOUT=30s"), want: "DRAIN_WINDOW (30s) must be shorter than SHUTDOWN_TIMEOUT (30s)"},
		{name: "heartbeat zero", env: with(dev, "PUBSUB_HEARTBEAT_INTERVAL=0s"), want: "PUBSUB_HEARTBEAT_INTERVAL must be a positive duration"},
		{name: "reconcile zero", env: with(dev, "RECONCILE_INTERVAL=0s"), want: "RECONCILE_INTERVAL must be a positive duration"},
		{name: "memory headroom negative", env: with(dev, "MEMORY_HEADROOM=-1"), want: "MEMORY_HEADROOM must be a percentage between 0 (off) and 1000"},
		{name: "memory headroom too large", env: with(dev, "MEMORY_HEADROOM=2000"), want: "MEMORY_HEADROOM must be a percentage between 0 (off) and 1000"},
		{name: "memory headroom NaN", env: with(dev, "MEMORY_HEADROOM=NaN"), want: "MEMORY_HEADROOM must be a number"},
		{name: "presence flush too short", env: with(dev, "PRESENCE_FLUSH_INTERVAL=1ms"), want: "PRESENCE_FLUSH_INTERVAL must be between 10ms and 10s"},
		{name: "presence flush too long", env: with(dev, "PRESENCE_FLUSH_INTERVAL=1m"), want: "PRESENCE_FLUSH_INTERVAL must be between 10ms and 10s"},
		{name: "presence events without presence", env: with(dev, "PRESENCE_ENABLED=false", "PRESENCE_EVENTS=true"), want: "PRESENCE_EVENTS=true needs PRESENCE_ENABLED=true"},
		{name: "presence bad bool", env: with(dev, "PRESENCE_ENABLED=maybe"), want: `PRESENCE_ENABLED must be true or false`},
		{name: "history off by size", env: with(dev, "HISTORY_SIZE=0")},
		{name: "pubsub shards off", env: with(dev, "PUBSUB_SHARDS=0")},
		{name: "pubsub shards max", env: with(dev, "PUBSUB_SHARDS=1024")},
		{name: "pubsub shards negative", env: with(dev, "PUBSUB_SHARDS=-1"), want: "PUBSUB_SHARDS must be between 0 (classic PUBLISH) and 1024"},
		{name: "pubsub shards huge", env: with(dev, "PUBSUB_SHARDS=1025"), want: "PUBSUB_SHARDS must be between 0 (classic PUBLISH) and 1024"},
		{name: "history off by ttl", env: with(dev, "HISTORY_TTL=0")},
		{name: "history size negative", env: with(dev, "HISTORY_SIZE=-1"), want: "HISTORY_SIZE must be between 0 (history off) and 100000"},
		{name: "history size huge", env: with(dev, "HISTORY_SIZE=100001"), want: "HISTORY_SIZE must be between 0 (history off) and 100000"},
		{name: "history ttl tiny", env: with(dev, "HISTORY_TTL=10ms"), want: "HISTORY_TTL must be 0 (history off) or at least 1s"},
		{name: "history ttl negative", env: with(dev, "HISTORY_TTL=-1h"), want: "HISTORY_TTL must be 0 (history off) or at least 1s"},
		{name: "resume max zero", env: with(dev, "RESUME_MAX_EVENTS=0"), want: "RESUME_MAX_EVENTS must be between 1 and 100000"},
		{name: "inbound bounds valid", env: with(prod, "INBOUND_PARTITIONS=1", "INBOUND_MAX_LEN=1", "INBOUND_GROUP=app.v2", "INBOUND_VISIBILITY_TIMEOUT=1s", "INBOUND_MAX_DELIVERIES=1")},
		{name: "inbound upper bounds valid", env: with(dev, "INBOUND_PARTITIONS=1024", "INBOUND_MAX_LEN=10000000", "INBOUND_VISIBILITY_TIMEOUT=1h", "INBOUND_MAX_DELIVERIES=100")},
		{name: "inbound partitions zero", env: with(dev, "INBOUND_PARTITIONS=0"), want: "INBOUND_PARTITIONS must be between 1 and 1024; got 0"},
		{name: "inbound partitions too many", env: with(dev, "INBOUND_PARTITIONS=1025"), want: "INBOUND_PARTITIONS must be between 1 and 1024"},
		{name: "inbound max len zero", env: with(prod, "INBOUND_MAX_LEN=0"), want: "INBOUND_MAX_LEN must be between 1 and 10000000; got 0"},
		{name: "inbound max bytes negative", env: with(dev, "INBOUND_MAX_BYTES=-1"), want: "INBOUND_MAX_BYTES must be between 1 and WS_MAX_MESSAGE_BYTES (32768); got -1"},
		{name: "inbound max bytes over the frame limit", env: with(dev, "WS_MAX_MESSAGE_BYTES=4096", "INBOUND_MAX_BYTES=4097"), want: "INBOUND_MAX_BYTES must be between 1 and WS_MAX_MESSAGE_BYTES (4096); got 4097"},
		{name: "inbound max len huge", env: with(dev, "INBOUND_MAX_LEN=10000001"), want: "INBOUND_MAX_LEN must be between 1 and 10000000"},
		{name: "inbound group with space", env: with(dev, "INBOUND_GROUP=my app"), want: "INBOUND_GROUP must be 1-64 characters"},
		{name: "inbound group too long", env: with(dev, "INBOUND_GROUP="+strings.Repeat("g", 65)), want: "INBOUND_GROUP must be 1-64 characters"},
		{name: "inbound visibility tiny", env: with(prod, "INBOUND_VISIBILITY_TIMEOUT=100ms"), want: "INBOUND_VISIBILITY_TIMEOUT must be between 1s and 1h0m0s; got 100ms"},
		{name: "inbound visibility huge", env: with(dev, "INBOUND_VISIBILITY_TIMEOUT=2h"), want: "INBOUND_VISIBILITY_TIMEOUT must be between 1s and 1h0m0s"},
		{name: "inbound deliveries zero", env: with(dev, "INBOUND_MAX_DELIVERIES=0"), want: "INBOUND_MAX_DELIVERIES must be between 1 and 100; got 0"},
		{name: "inbound deliveries huge", env: with(dev, "INBOUND_MAX_DELIVERIES=101"), want: "INBOUND_MAX_DELIVERIES must be between 1 and 100"},
		{name: "inbound webhook off by default valid", env: with(prod, "INBOUND_WEBHOOK_SECRET=")},
		{name: "inbound webhook https in production valid", env: with(prod, "INBOUND_WEBHOOK_URL=https://app.internal/inbound", "INBOUND_WEBHOOK_SECRET="+testWebhookSecret)},
		{name: "inbound webhook http on loopback in production valid", env: with(prod, "INBOUND_WEBHOOK_URL=http://127.0.0.1:9000/inbound", "INBOUND_WEBHOOK_SECRET="+testWebhookSecret)},
		{name: "inbound webhook http on localhost in production valid", env: with(prod, "INBOUND_WEBHOOK_URL=http://LocalHost:9000/inbound", "INBOUND_WEBHOOK_SECRET="+testWebhookSecret)},
		{name: "inbound webhook http on ::1 in production valid", env: with(prod, "INBOUND_WEBHOOK_URL=http://[::1]:9000/inbound", "INBOUND_WEBHOOK_SECRET="+testWebhookSecret)},
		{name: "inbound webhook http with a short secret in development valid", env: with(dev, "INBOUND_WEBHOOK_URL=http://app:9000/inbound", "INBOUND_WEBHOOK_SECRET=hunter2")},
		{name: "inbound webhook bounds valid", env: with(prod, "INBOUND_WEBHOOK_TIMEOUT=5m", "INBOUND_WEBHOOK_CONCURRENCY=1024")},
		{name: "inbound webhook http in production", env: with(prod, "INBOUND_WEBHOOK_URL=http://app.internal/inbound", "INBOUND_WEBHOOK_SECRET="+testWebhookSecret), want: "INBOUND_WEBHOOK_URL must be an https:// URL in production unless its host is loopback"},
		{name: "inbound webhook http on a private address in production", env: with(prod, "INBOUND_WEBHOOK_URL=http://10.0.0.5/inbound", "INBOUND_WEBHOOK_SECRET="+testWebhookSecret), want: "INBOUND_WEBHOOK_URL must be an https:// URL in production"},
		{name: "inbound webhook not http", env: with(dev, "INBOUND_WEBHOOK_URL=ftp://u:hunter2@app/in", "INBOUND_WEBHOOK_SECRET=s"), want: "INBOUND_WEBHOOK_URL must be an http:// or https:// URL with a host"},
		{name: "inbound webhook no host", env: with(dev, "INBOUND_WEBHOOK_URL=http:///in?token=hunter2", "INBOUND_WEBHOOK_SECRET=s"), want: "INBOUND_WEBHOOK_URL must be an http:// or https:// URL with a host"},
		{name: "inbound webhook without a secret", env: with(dev, "INBOUND_WEBHOOK_URL=http://app:9000/inbound"), want: "INBOUND_WEBHOOK_SECRET is required with INBOUND_WEBHOOK_URL"},
		{name: "inbound webhook short secret in production", env: with(prod, "INBOUND_WEBHOOK_URL=https://app.internal/inbound", "INBOUND_WEBHOOK_SECRET=hunter2"), want: "INBOUND_WEBHOOK_SECRET must be at least 32 bytes in production; got 7"},
		{name: "inbound webhook secret is the session secret", env: with(prod, "INBOUND_WEBHOOK_URL=https://app.internal/inbound", "INBOUND_WEBHOOK_SECRET="+testSecret), want: "INBOUND_WEBHOOK_SECRET must differ from SESSION_SECRET"},
		{name: "inbound webhook timeout zero", env: with(dev, "INBOUND_WEBHOOK_TIMEOUT=0s"), want: "INBOUND_WEBHOOK_TIMEOUT must be a positive duration of at most 5m0s; got 0s"},
		{name: "inbound webhook timeout huge", env: with(dev, "INBOUND_WEBHOOK_TIMEOUT=6m"), want: "INBOUND_WEBHOOK_TIMEOUT must be a positive duration of at most 5m0s"},
		{name: "inbound webhook timeout garbage", env: with(dev, "INBOUND_WEBHOOK_TIMEOUT=soon"), want: `INBOUND_WEBHOOK_TIMEOUT must be a duration such as "90s"`},
		{name: "inbound webhook concurrency zero", env: with(dev, "INBOUND_WEBHOOK_CONCURRENCY=0"), want: "INBOUND_WEBHOOK_CONCURRENCY must be between 1 and 1024; got 0"},
		{name: "inbound webhook concurrency huge", env: with(prod, "INBOUND_WEBHOOK_CONCURRENCY=1025"), want: "INBOUND_WEBHOOK_CONCURRENCY must be between 1 and 1024"},

		// Flags go through the same rules.
		{name: "flag value validated", env: dev, args: []string{"--ws-send-queue=0"}, want: "WS_SEND_QUEUE must be between 1 and 65536"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.args, lookup(tt.env))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if err := c.Validate(); err != nil {
					t.Fatalf("Validate of a loaded config: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want error containing %q", tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Fatalf("error does not contain %q:\n%s", tt.want, msg)
			}
			for _, secret := range []string{"hunter2", testWebhookSecret, testSecret, testKey, ExampleEncryptionKey, ExampleSessionSecret, testAPIKey} {
				if strings.Contains(msg, secret) {
					t.Fatalf("error leaks secret %q:\n%s", secret, msg)
				}
			}
		})
	}
}

// TestValidateStruct covers rules reachable only by building a Config by
// hand (Load cannot produce these values).
func TestValidateStruct(t *testing.T) {
	base := mustLoad(t, nil, prodEnv())
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{name: "valid", mutate: func(*Config) {}},
		{name: "16-byte key", mutate: func(c *Config) { c.EncryptionKeys = [][]byte{make([]byte, 16)} }, want: "SESSION_ENCRYPTION_KEY key 1 must be 32 bytes; got 16 bytes"},
		{name: "no keys", mutate: func(c *Config) { c.EncryptionKeys = nil }, want: "SESSION_ENCRYPTION_KEY is required"},
		{name: "empty secret in development", mutate: func(c *Config) { c.Env = EnvDevelopment; c.AuthMode = AuthModeDev; c.SessionSecret = nil }, want: "SESSION_SECRET is required"},
		{name: "insecure cookie in production", mutate: func(c *Config) { c.CookieSecure = false }, want: "COOKIE_SECURE cannot be false in production"},
		{name: "infinite rps", mutate: func(c *Config) { c.RateLimitRPS = math.Inf(1) }, want: "RATE_LIMIT_RPS must be a positive number"},
		{name: "NaN inbound rate", mutate: func(c *Config) { c.WSInboundRate = math.NaN() }, want: "WS_INBOUND_RATE must be a number of messages per second"},
		{name: "empty key prefix", mutate: func(c *Config) { c.KeyPrefix = "" }, want: "REDIS_KEY_PREFIX must be 1-64 characters"},
		{name: "empty instance id", mutate: func(c *Config) { c.InstanceID = "" }, want: "GATEWAY_INSTANCE_ID must be 1-64 characters"},
		{name: "empty cookie name", mutate: func(c *Config) { c.CookieName = "" }, want: "COOKIE_NAME must be 1-64 characters"},
		{name: "negative redis db", mutate: func(c *Config) { c.Redis.DB = -2 }, want: "REDIS_DB must be 0 or more; got -2"},
		{name: "empty redis url", mutate: func(c *Config) { c.Redis.URL = "" }, want: "REDIS_URL must be a redis:// or rediss:// URL with a host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.EncryptionKeys = append([][]byte(nil), base.EncryptionKeys...)
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate = %v, want ErrInvalid containing %q", err, tt.want)
			}
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	_, err := Load(nil, lookup(map[string]string{
		"GATEWAY_ENV":            "production",
		"SESSION_ENCRYPTION_KEY": "abcd",
		"AUTH_MODE":              "dev",
		"WS_SEND_QUEUE":          "0",
		"LOG_LEVEL":              "loud",
	}))
	if err == nil {
		t.Fatal("Load succeeded")
	}
	msg := err.Error()
	for _, want := range []string{"config: invalid configuration", "SESSION_SECRET is required", "got 4 characters", "AUTH_MODE=dev", "WS_SEND_QUEUE", "LOG_LEVEL"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	if lines := strings.Count(msg, "\n") + 1; lines < 6 {
		t.Errorf("want one line per problem (>= 6 lines), got %d:\n%s", lines, msg)
	}
}

func TestParseProblemNotRepeated(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		text string // must appear exactly once
	}{
		{name: "bad key is not also missing", env: with(prodEnv(), "SESSION_ENCRYPTION_KEY=abcd"), text: "SESSION_ENCRYPTION_KEY"},
		{name: "bad redis url reported once", env: map[string]string{"REDIS_URL": "redis://:pw@x:y"}, text: "REDIS_URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(nil, lookup(tt.env))
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if n := strings.Count(err.Error(), tt.text); n != 1 {
				t.Fatalf("%s mentioned %d times, want once:\n%s", tt.text, n, err)
			}
		})
	}
}

func TestBadValueKeepsDefault(t *testing.T) {
	// A value that fails to parse must not also produce a bogus second
	// problem from a zero value.
	_, err := Load(nil, lookup(map[string]string{"SHUTDOWN_TIMEOUT": "soon"}))
	if err == nil {
		t.Fatal("Load succeeded")
	}
	if strings.Contains(err.Error(), "must be shorter than SHUTDOWN_TIMEOUT") || strings.Contains(err.Error(), "SHUTDOWN_TIMEOUT must be a positive") {
		t.Fatalf("spurious follow-up problem:\n%s", err)
	}
}
