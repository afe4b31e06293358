package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/sessiongate/sessiongate/inbound/webhook"
)

// sendAndCollect sends one client message on c and returns its answer
// (ack or error) and the first event, in whichever order they come: a fast
// worker's reply can overtake the ack.
func sendAndCollect(t *testing.T, c *websocket.Conn, msg string) (ack, reply map[string]any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), generous)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	for reply == nil || ack == nil {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v (ack %v)", err, ack)
		}
		var f map[string]any
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		switch f["type"] {
		case "ack", "error":
			ack = f
		case "event":
			reply = f
		}
	}
	return ack, reply
}

// make run's gateway: embedded, demo page on, so it runs the example
// worker itself and a client message is answered with echo.reply.
func TestEmbeddedProcessAnswersMessages(t *testing.T) {
	addr := freeAddr(t)
	p := startProc(t, map[string]string{"GATEWAY_ADDR": addr, "GATEWAY_API_KEYS": apiKey, "GATEWAY_INSTANCE_ID": "embedded"})
	p.waitReady(t)
	c := dial(t, addr, mustToken(t, addr, "alice"))
	ack, reply := sendAndCollect(t, c, `{"type":"message","id":"m1","event":"echo","data":{"text":"hi"}}`)
	if ack["type"] != "ack" || ack["id"] != "m1" {
		t.Fatalf("ack %v", ack)
	}
	data, _ := reply["data"].(map[string]any)
	if reply["event"] != "echo.reply" || data["msg_id"] != ack["msg_id"] || data["worker"] != "embedded-echo" {
		t.Fatalf("reply %v", reply)
	}
}

// INBOUND_WEBHOOK_URL: the gateway POSTs each message, signed, to the
// application and delivers the application's reply to the sender.
func TestWebhookForwardingProcess(t *testing.T) {
	secret := strings.Repeat("k", 32)
	got := make(chan string, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := webhook.VerifySignature([]byte(secret), r.Header.Get(webhook.HeaderSignature), r.Header.Get(webhook.HeaderTimestamp),
			body, time.Now(), webhook.DefaultTolerance)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		select {
		case got <- string(body):
		default:
		}
		_, _ = w.Write([]byte(`{"reply":{"event":"hook.reply","data":{"ok":true}}}`))
	}))
	defer app.Close()
	addr := freeAddr(t)
	p := startProc(t, map[string]string{"GATEWAY_ADDR": addr, "GATEWAY_API_KEYS": apiKey, "GATEWAY_INSTANCE_ID": "hooked",
		"INBOUND_WEBHOOK_URL": app.URL + "/inbound", "INBOUND_WEBHOOK_SECRET": secret})
	p.waitReady(t)
	c := dial(t, addr, mustToken(t, addr, "bob"))
	ack, reply := sendAndCollect(t, c, `{"type":"message","id":"w1","event":"order","data":{"n":1}}`)
	if ack["type"] != "ack" {
		t.Fatalf("ack %v", ack)
	}
	if reply["event"] != "hook.reply" {
		t.Fatalf("reply %v", reply)
	}
	var posted struct {
		ID, Event string
		ClientID  string `json:"client_id"`
	}
	if err := json.Unmarshal([]byte(<-got), &posted); err != nil {
		t.Fatal(err)
	}
	if posted.ID != ack["msg_id"] || posted.ClientID != "w1" || posted.Event != "order" {
		t.Fatalf("the application got %+v, ack %v", posted, ack)
	}
	if strings.Contains(p.logs.String(), secret) {
		t.Fatal("the webhook secret reached the log")
	}
}
