package inbound

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/history"
	"github.com/sessiongate/sessiongate/internal/redistest"
	"github.com/sessiongate/sessiongate/pubsub"
)

// A reply reaches the bus as the gateway's publish API puts it there: a
// live envelope around a message event for the sender's session, with its
// position in the user's stream, and it is stored there for resumes.
func TestRedisReplierPublishesLikeTheGateway(t *testing.T) {
	ctx := context.Background()
	srv := redistest.Start(t)
	rdb := newClient(t, srv.Addr())
	ps := rdb.Subscribe(ctx, DefaultEventChannel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	h := history.NewRedis(rdb, history.Config{Prefix: "sessiongate:"})
	r := RedisReplier{History: h}
	to := msg("alice", 1)
	to.Handle = strings.Repeat("ab", 32)
	if err := r.Reply(ctx, &to, "echo", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	var m *redis.Message
	select {
	case m = <-ps.Channel():
	case <-time.After(waitFor):
		t.Fatal("no event published")
	}
	e, err := pubsub.DecodeAny([]byte(m.Payload))
	if err != nil {
		t.Fatalf("the gateway cannot decode the reply: %v", err)
	}
	if e.Kind != pubsub.KindMessage || e.Target == nil || *e.Target != (pubsub.Target{Handle: to.Handle}) ||
		e.Name != "echo" || string(e.Data) != `{"n":1}` || e.Origin != "inbound-worker" || e.ID == "" {
		t.Fatalf("event = %+v", e)
	}
	if e.Stream != "user:alice" || e.Epoch == "" || e.Offset != 1 {
		t.Fatalf("position = %s %s %d, want user:alice, an epoch, offset 1", e.Stream, e.Epoch, e.Offset)
	}
	res, err := h.Since(ctx, "user:alice", history.Position{Epoch: e.Epoch}, 10)
	if err != nil || !res.Recovered || len(res.Events) != 1 {
		t.Fatalf("history: %+v, %v", res, err)
	}
	if stored, err := pubsub.Decode(res.Events[0].Data); err != nil || stored.ID != e.ID {
		t.Fatalf("stored event = %+v, %v", stored, err)
	}
}

func TestReplyRefusesBadReplies(t *testing.T) {
	to := msg("alice", 1)
	noSender := to
	noSender.Handle = ""
	for _, tc := range []struct {
		name  string
		to    *Message
		event string
		data  any
	}{
		{"no sender", &noSender, "echo", nil},
		{"nil message", nil, "echo", nil},
		{"no event", &to, "", nil},
		{"long event", &to, strings.Repeat("e", MaxEventName+1), nil},
		{"array data", &to, "echo", []int{1}},
		{"string data", &to, "echo", "hi"},
		{"invalid raw data", &to, "echo", json.RawMessage(`{"a":`)},
		{"unencodable data", &to, "echo", func() {}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := replyEvent(tc.to, tc.event, tc.data, ""); !errors.Is(err, ErrBadReply) {
				t.Fatalf("err = %v, want ErrBadReply", err)
			}
		})
	}
	for _, data := range []any{nil, json.RawMessage(" null "), []byte(`{"a":1}`), struct{ A int }{1}} {
		if _, err := replyEvent(&to, "echo", data, ""); err != nil {
			t.Errorf("data %v: %v", data, err)
		}
	}
	if err := (RedisReplier{}).Reply(context.Background(), &to, "echo", nil); !errors.Is(err, ErrBadReply) {
		t.Errorf("Reply without History = %v", err)
	}
}
