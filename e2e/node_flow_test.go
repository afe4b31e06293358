//go:build e2e

package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sessiongate/sessiongate/e2e/internal/cluster"
)

// The login -> connect -> event -> logout -> 4500 flow driven by a non-Go
// WebSocket client (Node's ws) through the load balancer.
func TestNodeWSClientFlow(t *testing.T) {
	tc := startCluster(t, cluster.Options{Instances: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 2*generous)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(suite.repoRoot, "e2e", "node", "flow.mjs"), tc.URL(), tc.APIKey)
	out, err := cmd.CombinedOutput()
	t.Logf("node flow:\n%s", out)
	if err != nil {
		t.Fatalf("node flow failed: %v", err)
	}
	if !strings.Contains(string(out), `{"ok":true}`) || !strings.Contains(string(out), `"code":4500`) {
		t.Fatal("node flow did not end with close 4500")
	}
}
