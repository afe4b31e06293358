package main

import "testing"

// A phase's heap figures are the differences of the gateway's runtime
// metrics around it, and none when a scrape failed.
func TestHeapDelta(t *testing.T) {
	alloc, gcs, ok := heapDelta(promSample{metricAllocBytes: 5e6, metricGCCount: 10}, promSample{metricAllocBytes: 15e6, metricGCCount: 13}, 1000)
	if !ok || alloc != 10000 || gcs != 3 {
		t.Fatalf("got %v B/publish and %d collections (ok %v), want 10000 and 3", alloc, gcs, ok)
	}
	alloc, gcs, ok = heapDelta(nil, promSample{metricAllocBytes: 1}, 1000)
	if ok || alloc != 0 || gcs != 0 {
		t.Fatalf("a failed scrape gave %v B/publish and %d collections (ok %v)", alloc, gcs, ok)
	}
}
