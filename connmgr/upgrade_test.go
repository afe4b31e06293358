package connmgr

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// These tests pin what upgrade.go assumes of coder/websocket's
// websocket.Accept, so that a version that breaks it fails here, loudly,
// rather than as a memory regression or a connection that stalls:
//
//  1. Accept reads and writes through the *bufio.Reader and *bufio.Writer of
//     the ReadWriter our Hijack returns, keeping those very objects (it may
//     Reset the reader) for the connection's life: the small buffers are
//     the point, and the idle read loop asks our reader whether input is
//     buffered.
//  2. Bytes that came right behind the handshake, already in net/http's
//     buffer, are read first, then the socket; the first wait of the read
//     loop must not block on the socket while they wait above it.

// TestUpgradeKeepsOurBuffers checks assumption 1 on the websocket.Conn
// itself. It reads coder/websocket's unexported fields by reflection: if a
// new version renames or drops them, this fails with a message pointing at
// upgrade.go instead of silently measuring nothing.
func TestUpgradeKeepsOurBuffers(t *testing.T) {
	h := newHarness(t, Config{})
	cl := h.dial("alice", "s1")
	c := h.conn(cl.welcome.ConnID)
	if c == nil || c.idle == nil || c.idle.br == nil {
		t.Fatal("Upgrade registered no idle connection with our reader")
	}
	br := bufioField[bufio.Reader](t, c.ws, "br")
	bw := bufioField[bufio.Writer](t, c.ws, "bw")
	if br != c.idle.br {
		t.Fatal("coder/websocket reads through a bufio.Reader other than the one Hijack handed it: " +
			"the idle read loop's Buffered check is blind and the small buffer is not used (see connmgr/upgrade.go)")
	}
	if got := br.Size(); got != readBufferSize {
		t.Fatalf("read buffer is %d bytes, want %d", got, readBufferSize)
	}
	if got := bw.Size(); got != writeBufferSize {
		t.Fatalf("coder/websocket writes through a %d-byte buffer, want the %d-byte one Hijack handed it (see connmgr/upgrade.go)", got, writeBufferSize)
	}
}

// bufioField returns the *T in ws's unexported field name.
func bufioField[T any](t *testing.T, ws *websocket.Conn, name string) *T {
	t.Helper()
	f := reflect.ValueOf(ws).Elem().FieldByName(name)
	want := reflect.TypeFor[*T]()
	if !f.IsValid() || f.Type() != want {
		t.Fatalf("websocket.Conn has no field %s of type %v: coder/websocket changed how it keeps the hijacked "+
			"buffers; re-check connmgr/upgrade.go's assumptions before updating this test", name, want)
	}
	return (*T)(f.UnsafePointer())
}

// TestUpgradeServesPipelinedFrames checks assumption 2, and 1 by its
// effect: frames a client sends in the same write as its handshake, larger
// together than the read buffer, are all served without further
// input; later, several frames arriving in one segment are all served too
// (the second and third wait in our reader's buffer, where the idle loop
// must see them). Each stall would leave messages undelivered.
func TestUpgradeServesPipelinedFrames(t *testing.T) {
	h := newHarness(t, Config{})
	conn, err := net.Dial("tcp", h.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	big := strings.Repeat("x", 2*readBufferSize)
	var req bytes.Buffer
	req.WriteString("GET /ws?user=alice&handle=s1 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	req.Write(maskedText(`{"type":"message","data":{"n":1}}`))
	req.Write(maskedText(`{"type":"message","data":{"big":"` + big + `"}}`))
	req.Write(maskedText(`{"type":"message","data":{"n":2}}`))
	if _, err := conn.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", err, resp)
	}
	waitFor(t, "the three frames sent with the handshake", func() bool { return h.rec.messagesOf("alice") == 3 })

	var seg bytes.Buffer
	for i := 3; i < 6; i++ {
		seg.Write(maskedText(fmt.Sprintf(`{"type":"message","data":{"n":%d}}`, i)))
	}
	if _, err := conn.Write(seg.Bytes()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three frames sent in one segment", func() bool { return h.rec.messagesOf("alice") == 6 })

	h.rec.mu.Lock()
	got := strings.Join(h.rec.messages, " ")
	h.rec.mu.Unlock()
	want := `alice:{"n":1} alice:{"big":"` + big + `"} alice:{"n":2} alice:{"n":3} alice:{"n":4} alice:{"n":5}`
	if got != want {
		t.Fatalf("messages out of order or altered:\n got %.200s\nwant %.200s", got, want)
	}
}

// maskedText is a client text frame: FIN, masked, with a fixed mask key.
func maskedText(payload string) []byte {
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, key[:]...)
	for i := range len(payload) {
		b = append(b, payload[i]^key[i%4])
	}
	return b
}
