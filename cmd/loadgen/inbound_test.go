package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/connmgr"
	"github.com/sessiongate/sessiongate/inbound"
	"github.com/sessiongate/sessiongate/inbound/echo"
	"github.com/sessiongate/sessiongate/internal/redistest"
)

func TestMsgRefRoundTrip(t *testing.T) {
	for _, c := range []struct {
		run int
		k   int64
	}{{0, 0}, {1, 7}, {42, 1234567}} {
		run, k, ok := parseMsgRef(msgRef(nil, c.run, c.k))
		if !ok || run != c.run || k != c.k {
			t.Fatalf("parseMsgRef(msgRef(%d, %d)) = %d, %d, %v", c.run, c.k, run, k, ok)
		}
	}
	for _, bad := range []string{"", "r", "r1", "r1-", "x1-2", "r-2", "r1-x", "r1--2", "rx-1"} {
		if _, _, ok := parseMsgRef([]byte(bad)); ok {
			t.Fatalf("parseMsgRef(%q) accepted", bad)
		}
	}
}

// The client frame is one the gateway accepts as a message.
func TestInboundMessageIsAValidClientMessage(t *testing.T) {
	b := inboundMessage(nil, 3, 99)
	m, err := connmgr.ParseClientMessage(b)
	if err != nil {
		t.Fatalf("ParseClientMessage(%s): %v", b, err)
	}
	if m.ID != "r3-99" || m.Event != "echo" || !json.Valid(m.Data) {
		t.Fatalf("parsed %+v", m)
	}
	if len(b)+14 > 160 {
		t.Fatalf("frame of %d bytes does not fit writeFrame's stack buffer", len(b))
	}
}

// The references are found in the frames as the gateway and the echo
// worker encode them.
func TestRefsInGatewayFrames(t *testing.T) {
	ack := connmgr.EncodeAck("r2-5", "3-1700000000000-0")
	if string(stringAfter(ack, idKey)) != "r2-5" {
		t.Fatalf("ack %s: id %q", ack, stringAfter(ack, idKey))
	}
	e := connmgr.EncodeError("r2-6", connmgr.ErrCodeRateLimited, "slow down")
	if string(stringAfter(e, idKey)) != "r2-6" || string(stringAfter(e, codeKey)) != connmgr.ErrCodeRateLimited {
		t.Fatalf("error %s", e)
	}
	ev := echoReplyFrame(t, "r2-7")
	if string(stringAfter(ev, clientIDKey)) != "r2-7" {
		t.Fatalf("reply %s: client_id %q", ev, stringAfter(ev, clientIDKey))
	}
}

// echoReplyFrame is the event frame a client gets for the echo worker's
// reply to its message id.
func echoReplyFrame(t *testing.T, id string) []byte {
	t.Helper()
	data, err := json.Marshal(echo.Reply{MsgID: "3-1700000000000-0", ClientID: id, Event: "echo",
		Data: json.RawMessage(`{"text":"x","id":"not-this"}`), Deliveries: 1, Worker: "w"})
	if err != nil {
		t.Fatal(err)
	}
	return connmgr.EncodeEventAt("01JEVENTID0000000000000000", echo.ReplyEvent, data,
		connmgr.EventPosition{Stream: "user", StreamPosition: connmgr.StreamPosition{Epoch: "ab", Offset: 9}})
}

// fakeInboundGateway answers like the gateway's inbound path with the echo
// worker behind it: an ack and an echo.reply per message, except every
// refuseEvery-th message (by its number), which gets a rate_limited error.
func fakeInboundGateway(t *testing.T, refuseEvery int64) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		ctx := r.Context()
		_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"welcome","conn_id":"c"}`))
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			m, err := connmgr.ParseClientMessage(b)
			if err != nil {
				_ = c.Close(4503, "protocol")
				return
			}
			if _, k, _ := parseMsgRef([]byte(m.ID)); refuseEvery > 0 && k%refuseEvery == 0 {
				_ = c.Write(ctx, websocket.MessageText, connmgr.EncodeError(m.ID, connmgr.ErrCodeRateLimited, "no"))
				continue
			}
			_ = c.Write(ctx, websocket.MessageText, connmgr.EncodeAck(m.ID, "0-1-0"))
			_ = c.Write(ctx, websocket.MessageText, echoReplyFrame(t, m.ID))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestInboundStepsAgainstAFakeGateway(t *testing.T) {
	srv := fakeInboundGateway(t, 10)
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	f, err := openInboundFleet(ctx, newDialers(5*time.Second), addr, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.close()
	gs := gatewaySender{f: f}

	closed := runStep(ctx, 1, gs, stepSpec{mode: "round trip", conc: 4, warm: 20 * time.Millisecond, measure: 200 * time.Millisecond, conns: 3}, nil, &f.cur)
	checkStep(t, closed, false)

	paced := runStep(ctx, 2, gs, stepSpec{mode: "paced", rate: 500, warm: 20 * time.Millisecond, measure: 200 * time.Millisecond, conns: 3}, nil, &f.cur)
	checkStep(t, paced, false)
	if paced.Rate != 500 || paced.PerClientRate != 500.0/3 || paced.SendLag.N == 0 {
		t.Fatalf("paced step: rate %v, per client %v, lag samples %d", paced.Rate, paced.PerClientRate, paced.SendLag.N)
	}

	acks := runStep(ctx, 3, gs, stepSpec{mode: "enqueue", onAck: true, conc: 4, warm: 20 * time.Millisecond, measure: 200 * time.Millisecond, conns: 3}, nil, &f.cur)
	checkStep(t, acks, true)
}

// checkStep: every message sent was answered, refusals counted by code,
// message 0 (and every 10th) refused.
func checkStep(t *testing.T, s inboundStep, onAck bool) {
	t.Helper()
	if s.Error != "" || s.NotDone != 0 || s.Sent == 0 {
		t.Fatalf("%s: sent %d, not done %d, error %q", s.Mode, s.Sent, s.NotDone, s.Error)
	}
	refused := s.Errors[connmgr.ErrCodeRateLimited]
	if refused == 0 || len(s.Errors) != 1 {
		t.Fatalf("%s: errors %v, want some rate_limited", s.Mode, s.Errors)
	}
	if s.Acked+refused != s.Sent {
		t.Fatalf("%s: acked %d + refused %d != sent %d", s.Mode, s.Acked, refused, s.Sent)
	}
	if !onAck && s.Replied != s.Acked {
		t.Fatalf("%s: replied %d != acked %d", s.Mode, s.Replied, s.Acked)
	}
	if s.SendToAck.N == 0 || (!onAck && s.SendToReply.N == 0) {
		t.Fatalf("%s: no latency samples: %+v %+v", s.Mode, s.SendToAck, s.SendToReply)
	}
}

// The floor against a real redis-server: XADD alone, then with the
// consumer, every message completes.
func TestInboundFloorOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer rdb.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var cur atomic.Pointer[loadRun]
	users := []string{"u-1", "u-2", "u-3", "u-4"}
	crdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 2})
	defer crdb.Close()
	fl := newInboundFloor(rdb, crdb, users, inboundPartitions, 4, &cur)
	defer fl.close()

	st := runStep(ctx, 1, fl, stepSpec{mode: "floor xadd", onAck: true, conc: 4, warm: 20 * time.Millisecond, measure: 200 * time.Millisecond, conns: 4}, nil, &cur)
	if st.Error != "" || st.Sent == 0 || st.Acked != st.Sent || st.Replied != 0 {
		t.Fatalf("xadd step: %+v", st)
	}
	n, err := rdb.XLen(ctx, floorInKey(0)).Result()
	if err != nil {
		t.Fatal(err)
	}
	total := n
	for p := 1; p < inboundPartitions; p++ {
		total += rdb.XLen(ctx, floorInKey(p)).Val()
	}
	if total != st.Sent {
		t.Fatalf("%d entries in the floor's partitions, %d sent", total, st.Sent)
	}
	if err := fl.deleteKeys(ctx); err != nil {
		t.Fatal(err)
	}

	if err := fl.ensureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fl.ensureGroups(ctx); err != nil {
		t.Fatalf("ensureGroups twice: %v", err)
	}
	cctx, stop := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() { defer close(consumed); fl.consume(cctx) }()
	rt := runStep(ctx, 2, fl, stepSpec{mode: "floor round trip", conc: 4, warm: 20 * time.Millisecond, measure: 200 * time.Millisecond, conns: 4}, nil, &cur)
	stop()
	<-consumed
	if err := fl.consumeErr.Load(); err != nil {
		t.Fatalf("consumer: %v", *err)
	}
	if rt.Error != "" || rt.Sent == 0 || rt.Replied != rt.Sent || rt.SendToReply.N == 0 {
		t.Fatalf("round trip step: %+v", rt)
	}
	pending, err := rdb.XPending(ctx, floorInKey(inbound.Partition(users[0], inboundPartitions)), floorGroup).Result()
	if err != nil {
		t.Fatal(err)
	}
	if pending.Count != 0 {
		t.Fatalf("%d messages read and not acked", pending.Count)
	}
}

func TestPeakOfSkipsFailedSteps(t *testing.T) {
	steps := []inboundStep{{Conc: 1, PerSec: 10}, {Conc: 2, PerSec: 50, Error: "x"}, {Conc: 3, PerSec: 30}}
	p, ok := peakOf(steps)
	if !ok || p.Conc != 3 {
		t.Fatalf("peak %+v, %v", p, ok)
	}
	if _, ok := peakOf(nil); ok {
		t.Fatal("peak of no step")
	}
}
