package gateway

import (
	"encoding/base64"
	"net/http"
	"strings"
)

// checkHandshake checks that r is a WebSocket handshake (RFC 6455 4.2.1)
// before any session check or upgrade, so a request that cannot be
// upgraded gets the gateway's JSON error and an access log line, not the
// WebSocket library's plain-text answer. It mirrors what websocket.Accept
// verifies: HTTP/1.1, GET, "Connection: upgrade", "Upgrade: websocket",
// Sec-WebSocket-Version 13 and one Sec-WebSocket-Key of 16 base64 bytes.
// On failure it sets the headers the RFC asks for and returns the error.
func checkHandshake(w http.ResponseWriter, r *http.Request) error {
	if !r.ProtoAtLeast(1, 1) || !hasToken(r.Header, "Connection", "upgrade") || !hasToken(r.Header, "Upgrade", "websocket") {
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		return errorf(http.StatusUpgradeRequired, codeUpgradeRequired,
			"this endpoint speaks WebSocket only: send an HTTP/1.1 GET with \"Connection: Upgrade\" and \"Upgrade: websocket\"")
	}
	if r.Method != http.MethodGet {
		return errorf(http.StatusMethodNotAllowed, codeMethodNotAllowed, "a WebSocket handshake is a GET")
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return errorf(http.StatusBadRequest, codeBadRequest, "unsupported WebSocket version: only 13 is supported")
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return errorf(http.StatusBadRequest, codeBadRequest, "the handshake needs exactly one Sec-WebSocket-Key header")
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return errorf(http.StatusBadRequest, codeBadRequest, "Sec-WebSocket-Key must be 16 bytes in base64")
	}
	return nil
}

// hasToken reports whether the comma-separated header key lists token,
// ignoring case.
func hasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
