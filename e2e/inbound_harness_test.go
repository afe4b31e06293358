//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

// The inbound tests drive the demo page (gateway/web/index.html, served by
// the gateways through haproxy): its client-js client (window.sg.client)
// sends messages named "echo", the example workers (cmd/worker, real
// processes) answer each with an "echo.reply" event to the sender's
// session, and the page records what client-js delivered in
// window.sg.events.

// inboundEnv is the environment of the inbound tests' instances and
// workers, before each test's own.
func inboundEnv(extra map[string]string) map[string]string {
	env := map[string]string{
		// The tests send hundreds of messages at once from one connection:
		// the default rate (50/s, burst 100) would refuse most of them.
		// The rate-limit test sets its own.
		"WS_INBOUND_RATE":  "10000",
		"WS_INBOUND_BURST": "1000",
		// 500 acks and 500 replies may be queued for one connection at
		// once; a slow-consumer close (4000, at the default 64 frames)
		// would turn the acks in flight into "disconnected", which is the
		// app's to retry and not what these tests are about.
		"WS_SEND_QUEUE": "2048",
	}
	maps.Copy(env, extra)
	return env
}

// startInboundCluster starts 3 instances, haproxy and `workers` example
// workers with inboundEnv(extra).
func startInboundCluster(t *testing.T, workers int, extra map[string]string) *testCluster {
	t.Helper()
	return startCluster(t, cluster.Options{Workers: workers, Env: inboundEnv(extra)})
}

// inboundPage is the demo page, logged in and connected, with the test's
// sender installed.
type inboundPage struct {
	*page
	t *testing.T
}

// senderJS installs window.__in: send(n, tag, timeout) sends n messages
// {tag, n: i} named "echo" at once through client-js and records how each
// promise settled; summary(tag) counts them and the echo.reply events
// client-js delivered for the acked ones.
const senderJS = `(() => {
	if (window.__in) return true;
	const st = { sends: [] };
	window.__in = st;
	st.send = (n, tag, timeout) => {
		for (let i = 0; i < n; i++) {
			const rec = { tag, n: i, state: 'pending' };
			st.sends.push(rec);
			window.sg.client.send({ tag, n: i }, { event: 'echo', timeout }).then(
				(r) => { rec.state = 'ack'; rec.id = r.id; rec.msgId = r.msgId; },
				(e) => { rec.state = 'error'; rec.id = e.id ?? null; rec.code = e.code ?? String(e); });
		}
		return true;
	};
	st.replies = () => window.sg.events.filter((e) => e.event === 'echo.reply').map((e) => e.data);
	st.summary = (tag) => {
		const answered = new Set(st.replies().map((r) => r.msg_id));
		const s = { total: 0, pending: 0, acked: 0, errors: 0, answered: 0, codes: {} };
		for (const r of st.sends) {
			if (tag != null && r.tag !== tag) continue;
			s.total++;
			if (r.state === 'pending') s.pending++;
			else if (r.state === 'ack') { s.acked++; if (answered.has(r.msgId)) s.answered++; }
			else { s.errors++; s.codes[r.code] = (s.codes[r.code] || 0) + 1; }
		}
		return s;
	};
	return true;
})()`

// openInboundPage opens the demo page in a new browser context, logs
// userID in, waits for the client to be open and installs the sender.
func openInboundPage(t *testing.T, tc *testCluster, b *browser, userID string) *inboundPage {
	t.Helper()
	ctx := b.newContext(userID)
	p := ctx.newPage(userID)
	p.loginAndConnect(tc.URL(), userID)
	ctx.sessionCookie(tc, tc.URL(), "sg_session")
	p.waitFor(generous, "client open", `window.sg.client && window.sg.client.state === 'open'`, nil)
	p.eval(senderJS, nil)
	return &inboundPage{page: p, t: t}
}

// sendTimeout is the client-js timeout of the tests' sends: far beyond any
// answer, so a promise settles with the gateway's answer or a disconnect,
// never with the client's timer on a loaded machine.
const sendTimeout = 2 * time.Minute

// send sends n messages tagged tag at once.
func (p *inboundPage) send(n int, tag string) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`window.__in.send(%d, %s, %d)`, n, jsString(tag), sendTimeout.Milliseconds()), nil)
}

// sendSummary counts the sends of one tag ("" for all).
type sendSummary struct {
	Total    int            `json:"total"`
	Pending  int            `json:"pending"`
	Acked    int            `json:"acked"`
	Errors   int            `json:"errors"`
	Answered int            `json:"answered"`
	Codes    map[string]int `json:"codes"`
}

func tagArg(tag string) string {
	if tag == "" {
		return "null"
	}
	return jsString(tag)
}

func (p *inboundPage) summary(tag string) sendSummary {
	p.t.Helper()
	var s sendSummary
	p.eval(fmt.Sprintf(`window.__in.summary(%s)`, tagArg(tag)), &s)
	return s
}

// waitAnswered waits until every send of tag ("" for all) has settled and
// every acked one has at least one echo.reply, and returns the counts.
func (p *inboundPage) waitAnswered(timeout time.Duration, tag, what string) sendSummary {
	p.t.Helper()
	var s sendSummary
	p.waitFor(timeout, what, fmt.Sprintf(`(() => {
		const s = window.__in.summary(%s);
		return s.pending === 0 && s.answered === s.acked ? s : null; })()`, tagArg(tag)), &s)
	return s
}

// waitSettled waits until every send of tag has settled (acked or
// rejected) and returns the counts.
func (p *inboundPage) waitSettled(timeout time.Duration, tag, what string) sendSummary {
	p.t.Helper()
	var s sendSummary
	p.waitFor(timeout, what, fmt.Sprintf(`(() => {
		const s = window.__in.summary(%s);
		return s.pending === 0 ? s : null; })()`, tagArg(tag)), &s)
	return s
}

// sendRecord is how one send settled.
type sendRecord struct {
	Tag   string `json:"tag"`
	N     int    `json:"n"`
	State string `json:"state"`
	ID    string `json:"id"`
	MsgID string `json:"msgId"`
	Code  string `json:"code"`
}

func (p *inboundPage) sends(tag string) []sendRecord {
	p.t.Helper()
	var out []sendRecord
	p.eval(fmt.Sprintf(`window.__in.sends.filter((r) => %s === null || r.tag === %[1]s)`, tagArg(tag)), &out)
	return out
}

// echoReply is the data of an echo.reply event (inbound/echo.Reply).
type echoReply struct {
	MsgID    string `json:"msg_id"`
	ClientID string `json:"client_id"`
	Event    string `json:"event"`
	Data     struct {
		Tag string `json:"tag"`
		N   int    `json:"n"`
	} `json:"data"`
	Deliveries int    `json:"deliveries"`
	Worker     string `json:"worker"`
}

func (p *inboundPage) replies() []echoReply {
	p.t.Helper()
	var out []echoReply
	p.eval(`window.__in.replies()`, &out)
	return out
}

// repliesByMsgID groups replies by their msg_id.
func repliesByMsgID(rs []echoReply) map[string][]echoReply {
	out := map[string][]echoReply{}
	for _, r := range rs {
		out[r.MsgID] = append(out[r.MsgID], r)
	}
	return out
}

// checkReplies checks that every acked send got at least one reply that
// echoes it (its client id, event and data) and, when exactlyOnce, exactly
// one; and that every reply answers a send the page made.
func checkReplies(t *testing.T, sends []sendRecord, replies []echoReply, exactlyOnce bool) {
	t.Helper()
	byMsg := repliesByMsgID(replies)
	known := map[string]bool{}
	for _, s := range sends {
		if s.State != "ack" {
			continue
		}
		known[s.MsgID] = true
		rs := byMsg[s.MsgID]
		switch {
		case len(rs) == 0:
			t.Errorf("acked message %s (msg_id %s, %s #%d) got no reply", s.ID, s.MsgID, s.Tag, s.N)
			continue
		case exactlyOnce && len(rs) != 1:
			t.Errorf("message %s (msg_id %s) got %d replies, want exactly 1: %+v", s.ID, s.MsgID, len(rs), rs)
		}
		for _, r := range rs {
			if r.ClientID != s.ID || r.Event != "echo" || r.Data.Tag != s.Tag || r.Data.N != s.N {
				t.Errorf("reply for msg_id %s echoes %+v, want client id %s, event echo, data {%s %d}", s.MsgID, r, s.ID, s.Tag, s.N)
			}
		}
	}
	// A send rejected with a fate the client does not know (the socket
	// closed, or the ack timed out, after it was sent: client-js's
	// "disconnected" and "timeout", docs/PROTOCOL.md) may have been
	// queued: a reply to it is allowed, if it echoes that send. A reply to
	// any other send (refused, never sent) or to no send is an error.
	unknownFate := map[string]sendRecord{}
	for _, s := range sends {
		if s.State == "error" && (s.Code == "disconnected" || s.Code == "timeout") && s.ID != "" {
			unknownFate[s.ID] = s
		}
	}
	for id, rs := range byMsg {
		if known[id] {
			continue
		}
		for _, r := range rs {
			s, ok := unknownFate[r.ClientID]
			if !ok {
				t.Errorf("reply for msg_id %s (client id %s) answers no acked send of the page, nor one whose fate the client did not know", id, r.ClientID)
				continue
			}
			if r.Event != "echo" || r.Data.Tag != s.Tag || r.Data.N != s.N {
				t.Errorf("reply for msg_id %s echoes %+v, want event echo, data {%s %d} (send rejected with %s)", id, r, s.Tag, s.N, s.Code)
			}
		}
	}
}

// inboundPartitions is INBOUND_PARTITIONS (the default) and inboundGroup
// INBOUND_GROUP: the tests read the queue's pending entries in Redis.
const (
	inboundPartitions = 16
	inboundGroup      = "app"
)

// pendingOf returns the queue ids ("<partition>-<entry id>", the acks'
// msg_id) of the messages delivered to consumer and not acked.
func pendingOf(ctx context.Context, rdb redis.UniversalClient, consumer string) ([]string, error) {
	var ids []string
	for n := range inboundPartitions {
		stream := "sge2e:in:{" + strconv.Itoa(n) + "}"
		ps, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
			Stream: stream, Group: inboundGroup, Start: "-", End: "+", Count: 10000, Consumer: consumer,
		}).Result()
		if err != nil {
			return nil, fmt.Errorf("XPENDING %s: %w", stream, err)
		}
		for _, p := range ps {
			ids = append(ids, strconv.Itoa(n)+"-"+p.ID)
		}
	}
	return ids, nil
}

// gatewayLogs lists the instances' log files.
func (tc *testCluster) gatewayLogs() []string {
	var out []string
	for _, g := range tc.Gateways {
		out = append(out, g.LogPath)
	}
	return out
}
