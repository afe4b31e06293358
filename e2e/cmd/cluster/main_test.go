package main

import (
	"context"
	"strings"
	"testing"
)

// An unknown topology (make cluster REDIS=...) is refused with the choices,
// before anything is built or started.
func TestUnknownRedisTopologyRefused(t *testing.T) {
	env := map[string]string{"CLUSTER_REDIS": "replicated"}
	err := run(context.Background(), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err == nil || !strings.Contains(err.Error(), "want single, cluster or sentinel") {
		t.Fatalf("run = %v, want the topology refused", err)
	}
}
