package cluster

import (
	"errors"
	"strings"
	"testing"
)

// A missing program is an error naming the Debian package and `make deps`.
func TestNeedNamesTheDebianPackage(t *testing.T) {
	err := Need("sessiongate-no-such-program")
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("Need = %v, want ErrNotFound", err)
	}
	for _, want := range []string{"sessiongate-no-such-program", "Debian package", "make deps"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	tests := []struct{ prog, pkg string }{
		{"redis-server", "redis-server"},
		{"redis-cli", "redis-tools"},
		{"redis-sentinel", "redis-sentinel"},
		{"haproxy", "haproxy"},
		{"nginx", "nginx"},
		{"chromium", "chromium"},
		{"prometheus", "prometheus"},
	}
	for _, tc := range tests {
		if got := debianPackage(tc.prog); got != tc.pkg {
			t.Errorf("debianPackage(%q) = %q, want %q", tc.prog, got, tc.pkg)
		}
	}
}
