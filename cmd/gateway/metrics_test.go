package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// GATEWAY_METRICS_ADDR: /metrics is served on that listener only (the
// public port answers a 404 JSON error), and the listener goes away with
// the process.
func TestMetricsListener(t *testing.T) {
	addr, metricsAddr := freeAddr(t), freeAddr(t)
	env := map[string]string{"GATEWAY_ADDR": addr, "GATEWAY_METRICS_ADDR": metricsAddr, "GATEWAY_INSTANCE_ID": "metrics-test"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, func(k string) (string, bool) { v, ok := env[k]; return v, ok }) }()

	get := func(url string) (int, []byte, error) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if st, _, err := get("http://" + addr + "/healthz"); err == nil && st == http.StatusOK {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("run returned early: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("gateway never answered /healthz")
		}
		time.Sleep(20 * time.Millisecond)
	}

	st, body, err := get("http://" + metricsAddr + "/metrics")
	if err != nil || st != http.StatusOK || !strings.Contains(string(body), "sessiongate_connections_open") {
		t.Fatalf("metrics listener /metrics: %d %v\n%.300s", st, err, body)
	}
	st, body, err = get("http://" + addr + "/metrics")
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	if err != nil || st != http.StatusNotFound || json.Unmarshal(body, &e) != nil || e.Error.Code != "not_found" {
		t.Fatalf("public /metrics: %d %v %s, want 404 JSON not_found", st, err, body)
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run returned %v after a clean drain", err)
	}
	// run has returned, so its deferred stop closed the listener.
	if c, err := net.DialTimeout("tcp", metricsAddr, 5*time.Second); err == nil {
		c.Close()
		t.Fatal("metrics listener still accepting after run returned")
	}
}
