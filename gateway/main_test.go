package gateway

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/sessiongate/sessiongate/internal/logschema"
)

// logRecorder records, in the production JSON encoding, every line that the
// gateways these tests build write (buildGateway tees into it); TestMain
// checks them all against the log schema of docs/LOGS.md.
var logRecorder logschema.Recorder

// gatewaysBuilt counts buildGateway calls: with any, some line must have
// been recorded, or the recorder is not wired.
var gatewaysBuilt atomic.Int64

func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		problems, checked := logRecorder.Problems(30)
		if checked == 0 && gatewaysBuilt.Load() > 0 {
			fmt.Fprintln(os.Stderr, "log schema: no log line recorded; the recorder is not wired")
			code = 1
		}
		if len(problems) > 0 {
			fmt.Fprintf(os.Stderr, "log schema: lines that break docs/LOGS.md (of %d checked):\n", checked)
			for _, p := range problems {
				fmt.Fprintln(os.Stderr, p)
			}
			code = 1
		}
	}
	os.Exit(code)
}
