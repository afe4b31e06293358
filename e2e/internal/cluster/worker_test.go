package cluster

import (
	"context"
	"strings"
	"testing"
)

// A worker is ready when its current run logged the start line; the line
// of a run before a restart (the log appends) does not count.
func TestWorkerReadinessCountsOnlyTheLastRun(t *testing.T) {
	started := `{"level":"info","msg":"inbound worker started","worker":"worker-1","concurrency":8}`
	other := `{"level":"info","logger":"redis","msg":"redis connected"}`
	run := func(lines ...string) string {
		return "\n" + runMarker + "worker-1 at 2026-01-01T00:00:00Z ===\n" + strings.Join(lines, "\n") + "\n"
	}
	for _, tt := range []struct {
		name string
		log  string
		want bool
	}{
		{name: "empty", log: "", want: false},
		{name: "first run starting", log: run(other), want: false},
		{name: "first run started", log: run(other, started), want: true},
		{name: "restarted, not yet started", log: run(other, started) + run(other), want: false},
		{name: "restarted and started", log: run(other, started) + run(other, started), want: true},
		{name: "text logs are not JSON", log: run("INFO\tinbound worker started"), want: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := startedInLastRun([]byte(tt.log)); got != tt.want {
				t.Errorf("startedInLastRun = %v, want %v\n%s", got, tt.want, tt.log)
			}
		})
	}
}

// Workers without a worker binary are refused before anything starts.
func TestStartRefusesWorkersWithoutBinary(t *testing.T) {
	_, err := Start(context.Background(), Options{Dir: t.TempDir(), GatewayBin: "/bin/false", Workers: 1})
	if err == nil || !strings.Contains(err.Error(), "WorkerBin") {
		t.Fatalf("Start = %v, want an error naming WorkerBin", err)
	}
}
