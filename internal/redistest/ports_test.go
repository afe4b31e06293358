package redistest

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A port is leased once: offered again within the lease it is refused, and
// after the lease ran out it is renewed.
func TestLeasePort(t *testing.T) {
	dir := t.TempDir()
	if !leasePort(dir, 40001) {
		t.Fatal("a fresh port was not leased")
	}
	if leasePort(dir, 40001) {
		t.Fatal("a port leased a moment ago was leased again")
	}
	old := time.Now().Add(-portLease - time.Minute)
	if err := os.Chtimes(filepath.Join(dir, "40001"), old, old); err != nil {
		t.Fatal(err)
	}
	if !leasePort(dir, 40001) {
		t.Fatal("an expired lease was not renewed")
	}
	if leasePort(dir, 40001) {
		t.Fatal("a renewed lease was leased again")
	}
	a, b := FreePort(t), FreePort(t)
	if a == b {
		t.Fatalf("FreePort gave %d twice", a)
	}
}
