package gateway

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A frame the client pipelines in the same write as its handshake must not
// be lost when the connection moves to the small buffers.
func TestPipelinedFrameAfterHandshake(t *testing.T) {
	g := startGateway(t, gwOptions{})
	tok, _ := g.createSession("pipe")
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.http.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
		"Authorization: Bearer " + tok + "\r\n\r\n"
	// A malformed client frame right behind the request: the server must read
	// it and close with 4503.
	if _, err := conn.Write(append([]byte(req), maskedText(`{"type":`)...)); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", err, resp)
	}
	for {
		op, payload := readFrame(t, br)
		if op == 8 { // close
			if code := binary.BigEndian.Uint16(payload); code != 4503 {
				t.Fatalf("close code %d, want 4503", code)
			}
			return
		}
	}
}

func maskedText(s string) []byte {
	key := []byte{1, 2, 3, 4}
	out := []byte{0x81, 0x80 | byte(len(s))}
	out = append(out, key...)
	for i := 0; i < len(s); i++ {
		out = append(out, s[i]^key[i%4])
	}
	return out
}

func readFrame(t *testing.T, r *bufio.Reader) (op byte, payload []byte) {
	t.Helper()
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	n := int(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		io.ReadFull(r, b[:])
		n = int(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		io.ReadFull(r, b[:])
		n = int(binary.BigEndian.Uint64(b[:]))
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		t.Fatalf("read payload: %v", err)
	}
	return h[0] & 0x0f, payload
}
