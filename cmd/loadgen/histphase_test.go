package main

import "testing"

// A publish run's heap figures are the differences of the gateway's
// runtime metrics around it, and none when a scrape failed.
func TestPublishRunHeapCost(t *testing.T) {
	p := publishRun{Publishes: 1000}
	p.heapCost(promSample{metricAllocBytes: 5e6, metricGCCount: 10}, promSample{metricAllocBytes: 15e6, metricGCCount: 13})
	if p.AllocPerPublish != 10000 || p.Collections != 3 {
		t.Fatalf("got %v B/publish and %d collections, want 10000 and 3", p.AllocPerPublish, p.Collections)
	}
	q := publishRun{Publishes: 1000}
	q.heapCost(nil, promSample{metricAllocBytes: 1})
	if q.AllocPerPublish != 0 || q.Collections != 0 {
		t.Fatalf("a failed scrape gave %v B/publish and %d collections", q.AllocPerPublish, q.Collections)
	}
}
