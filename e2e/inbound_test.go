//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Issue 11 end to end: 3 instances behind haproxy, example workers as real
// processes, Chromium running client-js in the demo page. The page sends
// 500 messages at once; every send() resolves with an ack, and client-js
// delivers exactly one echo.reply per message, echoing it. The demo page's
// own "Send message to server" button works the same way.
func TestInboundEchoThroughCluster(t *testing.T) {
	const total = 500
	tc := startInboundCluster(t, 2, nil)
	b := startBrowser(t, tc, false)
	p := openInboundPage(t, tc, b, "echo-user")

	// The button: the input's JSON goes out as an "echo" message; the page
	// records the ack in window.sg.sends and the reply in window.sg.events.
	p.eval(`document.getElementById('msg').value = '{"text":"hi from the button"}'`, nil)
	p.click("#send-btn")
	var button sendRecord
	p.waitFor(generous, "the button's message settled", `window.sg.sends.length === 1 && window.sg.sends[0]`, &button)
	msgID := button.MsgID
	if msgID == "" {
		t.Fatalf("the button's message was not acked: %+v", button)
	}
	var text string
	p.waitFor(generous, "the button's message answered", fmt.Sprintf(`(() => {
		const r = window.sg.events.find((e) => e.event === 'echo.reply' && e.data.msg_id === %s);
		return r ? r.data.data.text : null; })()`, jsString(msgID)), &text)
	if text != "hi from the button" {
		t.Fatalf("the button's reply echoes %q", text)
	}

	p.send(total, "a")
	s := p.waitAnswered(2*generous, "a", "every message acked and answered")
	if s.Total != total || s.Acked != total || s.Errors != 0 {
		t.Fatalf("sends: %+v; want all %d acked", s, total)
	}
	sends := p.sends("a")
	replies := slices.DeleteFunc(p.replies(), func(r echoReply) bool { return r.MsgID == msgID })
	ids := map[string]bool{}
	for _, s := range sends {
		if ids[s.MsgID] {
			t.Errorf("msg_id %s acked twice", s.MsgID)
		}
		ids[s.MsgID] = true
	}
	checkReplies(t, sends, replies, true)
	if len(replies) != total {
		t.Errorf("%d echo.reply events for %d messages", len(replies), total)
	}
	workers := map[string]int{}
	for _, r := range replies {
		workers[r.Worker]++
	}
	t.Logf("%d messages acked and answered once each; replies by worker: %v", total, workers)
}

// A burst over the connection's inbound rate gets a rate_limited error
// for each message over it, not silence, and the connection stays open:
// the messages within the rate are acked and answered on it.
func TestInboundBurstOverRateGetsRateLimited(t *testing.T) {
	const (
		burst = 10
		sent  = 30 // burst + 20 refusals: fewer than the 32 in a row that close with 4008
	)
	tc := startInboundCluster(t, 1, map[string]string{
		"WS_INBOUND_RATE":  "1",
		"WS_INBOUND_BURST": fmt.Sprint(burst),
	})
	b := startBrowser(t, tc, false)
	p := openInboundPage(t, tc, b, "burst-user")
	sock, _ := p.openSocket(generous, 0, "connected")

	start := time.Now()
	p.send(sent, "b")
	settled := p.waitSettled(generous, "b", "every message of the burst settled")
	elapsed := time.Since(start)
	t.Logf("burst of %d at rate 1/s, burst %d: %+v in %s", sent, burst, settled, elapsed.Round(time.Millisecond))
	// The bucket holds the burst and refills at 1/s while the burst is
	// read (less than elapsed, which includes the browser's round trips);
	// a pong may have taken a token before.
	if most := burst + int(elapsed.Seconds()) + 1; settled.Acked == 0 || settled.Acked > most {
		t.Errorf("%d acked; want 1..%d (the burst and what refilled meanwhile)", settled.Acked, most)
	}
	if settled.Errors == 0 || settled.Codes["rate_limited"] != settled.Errors || settled.Acked+settled.Errors != sent {
		t.Errorf("errors %v; want every message over the budget refused with rate_limited", settled.Codes)
	}
	s := p.waitAnswered(generous, "b", "the acked messages of the burst answered")
	if s.Acked != settled.Acked {
		t.Fatalf("acks changed after every send settled: %+v then %+v", settled, s)
	}
	checkReplies(t, p.sends("b"), p.replies(), true)
	// The connection stayed open: the replies came on it, and it is still
	// the page's only socket, not closed.
	socks := p.sockets()
	if len(socks) != sock+1 || socks[sock].Closed != nil {
		t.Fatalf("the socket closed or was replaced after the burst: %s", p.socketsJSON())
	}
	var state string
	p.eval(`window.sg.client.state`, &state)
	if state != "open" {
		t.Fatalf("client state %q after the burst, want open", state)
	}
}

// A worker killed with -9 while it holds messages: every acked message
// still gets its reply, the killed worker's ones redelivered to the other
// worker once INBOUND_VISIBILITY_TIMEOUT passed (at least once: a message
// the victim answered but did not ack is answered again, with deliveries 2).
func TestInboundWorkerKilledMessagesRedelivered(t *testing.T) {
	tc := startInboundCluster(t, 2, map[string]string{"INBOUND_VISIBILITY_TIMEOUT": "2s"})
	b := startBrowser(t, tc, false)
	p := openInboundPage(t, tc, b, "kill-user")
	rdb := redis.NewClient(&redis.Options{Addr: tc.Redis.Addr()})
	t.Cleanup(func() { rdb.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	victim := tc.Worker("worker-1")
	t.Cleanup(func() { _ = victim.Signal(syscall.SIGCONT) })
	// Catch the victim holding messages: while a batch flows, freeze it
	// (SIGSTOP) and read its pending entries in Redis; none, let it go on
	// and try again. A frozen worker cannot ack, so what Redis shows is
	// what it holds when it is killed.
	var held []string
	for batch := 0; len(held) == 0; batch++ {
		if batch == 10 {
			t.Fatalf("worker-1 never held a message in %d batches", batch)
		}
		tag := fmt.Sprintf("c%d", batch)
		p.send(200, tag)
		deadline := time.Now().Add(generous)
		for {
			if err := victim.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			ids, err := pendingOf(ctx, rdb, victim.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(ids) > 0 {
				held = ids
				break
			}
			if err := victim.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			s := p.summary(tag)
			if s.Pending == 0 && s.Answered == s.Acked {
				break // this batch is done: send another
			}
			if time.Now().After(deadline) {
				t.Fatalf("batch %s not answered within %s: %+v", tag, generous, s)
			}
		}
	}
	victim.Kill()
	t.Logf("killed worker-1 (-9) holding %d messages", len(held))

	s := p.waitAnswered(2*generous, "", "every acked message answered after the kill")
	if s.Errors != 0 {
		t.Errorf("sends refused: %v", s.Codes)
	}
	// A held message the victim answered before it froze counts as
	// answered already: its redelivery (after the visibility timeout) is
	// a second answer, waited for here rather than assumed to be in.
	eventually(t, 2*generous, "the killed worker's messages redelivered to worker-2", func() error {
		byMsg := repliesByMsgID(p.replies())
		for _, id := range held {
			if !slices.ContainsFunc(byMsg[id], func(r echoReply) bool { return r.Worker == "worker-2" && r.Deliveries >= 2 }) {
				return fmt.Errorf("message %s held by the killed worker not redelivered to worker-2: replies %+v", id, byMsg[id])
			}
		}
		return nil
	})
	sends, replies := p.sends(""), p.replies()
	checkReplies(t, sends, replies, false)
	byMsg := repliesByMsgID(replies)
	again := 0
	for _, rs := range byMsg {
		if len(rs) > 1 {
			again++
		}
	}
	t.Logf("%d messages acked, all answered; %d held by worker-1 redelivered; %d answered more than once", s.Acked, len(held), again)

	// The killed worker comes back and reads the queue with the others.
	if err := victim.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	p.send(50, "after")
	if s := p.waitAnswered(generous, "after", "messages after the restart answered"); s.Acked != 50 {
		t.Fatalf("after the restart: %+v", s)
	}
}

// Redis stopped: a send is refused with "unavailable" (or, should the
// socket drop, rejected with "disconnected"), never acked; once Redis is
// back, sends are acked and answered, and so are the messages acked before
// the outage that no worker had handled yet: an ack means durably queued.
func TestInboundRedisDownRefusesThenRecovers(t *testing.T) {
	tc := startInboundCluster(t, 1, nil)
	b := startBrowser(t, tc, false)
	p := openInboundPage(t, tc, b, "down-user")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	p.send(5, "warmup")
	if s := p.waitAnswered(generous, "warmup", "messages before the outage answered"); s.Acked != 5 {
		t.Fatalf("before the outage: %+v", s)
	}
	// Acked but not handled when Redis dies: the worker is frozen.
	worker := tc.Worker("worker-1")
	if err := worker.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = worker.Signal(syscall.SIGCONT) })
	p.send(20, "before")
	if s := p.waitSettled(generous, "before", "messages before the outage settled"); s.Acked != 20 {
		t.Fatalf("before the outage: %+v", s)
	}

	tc.Redis.Kill()
	p.send(20, "down")
	s := p.waitAnswered(generous, "down", "every send during the outage settled")
	t.Logf("during the outage: %+v", s)
	if s.Acked != 0 {
		t.Errorf("%d sends acked while Redis was down", s.Acked)
	}
	for code, n := range s.Codes {
		if code != "unavailable" && code != "disconnected" {
			t.Errorf("%d sends rejected with %q, want unavailable or disconnected", n, code)
		}
	}
	if s.Codes["unavailable"] > 0 && !logContains(tc.gatewayLogs(), `"msg":"inbound enqueue failed"`) {
		t.Errorf("no gateway logged inbound enqueue failed")
	}

	if err := tc.Redis.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := worker.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	// Redis is back: sends are acked (the first ones may still be refused
	// while the instance reconnects).
	try := 0
	eventually(t, generous, "a send acked after Redis came back", func() error {
		try++
		tag := fmt.Sprintf("probe%d", try)
		p.send(1, tag)
		if s := p.waitAnswered(generous, tag, "a probe settled"); s.Acked != 1 {
			return fmt.Errorf("probe %d: %v", try, s.Codes)
		}
		return nil
	})
	p.send(20, "after")
	if s := p.waitAnswered(generous, "after", "messages after the outage answered"); s.Acked != 20 {
		t.Fatalf("after the outage: %+v", s)
	}
	if s := p.waitAnswered(generous, "before", "messages acked before the outage answered"); s.Acked != 20 {
		t.Fatalf("acked before the outage: %+v", s)
	}
	checkReplies(t, p.sends(""), p.replies(), false)
}
