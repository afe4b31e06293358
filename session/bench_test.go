package session

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/internal/redistest"
)

// benchPayload is a typical session payload (~200 bytes of JSON).
var benchData = json.RawMessage(`{"name":"Alice Example","roles":["admin","editor"],"tenant":"acme-corp","locale":"en-GB","theme":"dark","csrf":"f3c9a1b2c3d4e5f60718293a4b5c6d7e"}`)

func benchPlaintext(b *testing.B) []byte {
	b.Helper()
	pt, err := json.Marshal(newSession(fakeHandle, "alice", benchData, newFakeClock().Now(), DefaultLifetime))
	if err != nil {
		b.Fatal(err)
	}
	return pt
}

const fakeHandle = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func BenchmarkSeal(b *testing.B) {
	kr := newTestKeyring(b)
	pt := benchPlaintext(b)
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Seal("sessiongate:s:"+fakeHandle, testExpiry, pt); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	kr := newTestKeyring(b)
	pt := benchPlaintext(b)
	blob, err := kr.Seal("sessiongate:s:"+fakeHandle, testExpiry, pt)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(pt)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := kr.Open("sessiongate:s:"+fakeHandle, blob); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseToken(b *testing.B) {
	c := newTestCodec(b)
	tok, _, err := c.New()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Parse(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// benchRedis starts one real redis-server for a benchmark (skipped when
// redis-server is not installed, outside CI).
func benchRedis(b *testing.B) (*RedisStore, redis.UniversalClient) {
	b.Helper()
	srv := redistest.Start(b)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	b.Cleanup(func() { _ = rdb.Close() })
	st, err := NewRedisStore(rdb, newTestCodec(b), newTestKeyring(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	return st, rdb
}

// BenchmarkStoreGet is the gateway's per-request cost against a real
// redis-server: parse the cookie, read the session, open the envelope.
// BenchmarkRawGET, in the same run, is the floor: a plain GET of the same
// key. Compare their ns/op.
func BenchmarkStoreGet(b *testing.B) {
	st, rdb := benchRedis(b)
	ctx := context.Background()
	tok, s, err := st.Create(ctx, "alice", benchData)
	if err != nil {
		b.Fatal(err)
	}
	// RawGET: the floor on the same server and key, for a ratio that is
	// not skewed by server start-up or a noisy neighbour between runs.
	rawGET := func(ctx context.Context, handle string) (Session, bool, error) {
		_, err := rdb.Get(ctx, st.sessionKey(s.Handle)).Bytes()
		return Session{}, err == nil, err
	}
	for _, bc := range []struct {
		name string
		read func(context.Context, string) (Session, bool, error)
	}{
		{name: "RawGET", read: rawGET},
		{name: "Get", read: st.Get},
		{name: "Load", read: st.Load},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				handle, err := st.codec.Parse(tok)
				if err != nil {
					b.Fatal(err)
				}
				if _, ok, err := bc.read(ctx, handle); err != nil || !ok {
					b.Fatalf("read: %v, %v", ok, err)
				}
			}
		})
	}
}

func BenchmarkRawGET(b *testing.B) {
	st, rdb := benchRedis(b)
	ctx := context.Background()
	_, s, err := st.Create(ctx, "alice", benchData)
	if err != nil {
		b.Fatal(err)
	}
	key := st.sessionKey(s.Handle)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rdb.Get(ctx, key).Bytes(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeSession is the CPU the store adds to a GET: open the
// envelope and decode the JSON payload.
func BenchmarkDecodeSession(b *testing.B) {
	kr := newTestKeyring(b)
	st := &RedisStore{keys: kr, opts: Options{Prefix: DefaultPrefix}}
	blob, err := st.seal(newSession(fakeHandle, "alice", benchData, newFakeClock().Now(), DefaultLifetime))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := st.open(fakeHandle, blob); err != nil {
			b.Fatal(err)
		}
	}
}
