package logschema

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	events := map[string]Event{
		"connection closed": {
			Msg: "connection closed", Levels: []string{"info"},
			Required: map[string]Kind{"conn_id": String, "code": Number},
			Optional: map[string]Kind{"duration": Number},
		},
	}
	for _, tc := range []struct {
		name, line, err string
	}{
		{"valid", `{"level":"info","ts":1.5,"msg":"connection closed","conn_id":"c1","code":4500,"duration":0.2}`, ""},
		{"duplicate key", `{"level":"info","ts":1,"msg":"connection closed","conn_id":"c1","code":1,"instance":"a","instance":"a"}`, "duplicate key"},
		{"duplicate nested key", `{"level":"info","ts":1,"msg":"connection closed","conn_id":"c1","code":1,"x":{"a":1,"a":2}}`, "duplicate key"},
		{"unknown event", `{"level":"info","ts":1,"msg":"something else"}`, "unknown event"},
		{"wrong level", `{"level":"debug","ts":1,"msg":"connection closed","conn_id":"c1","code":1}`, "at level"},
		{"missing field", `{"level":"info","ts":1,"msg":"connection closed","conn_id":"c1"}`, `missing field "code"`},
		{"wrong kind", `{"level":"info","ts":1,"msg":"connection closed","conn_id":"c1","code":"4500"}`, "want number"},
		{"undeclared field", `{"level":"info","ts":1,"msg":"connection closed","conn_id":"c1","code":1,"user":"x"}`, "undeclared"},
		{"forbidden field", `{"level":"info","ts":1,"msg":"connection closed","conn_id":"c1","code":1,"password":"x"}`, "forbidden"},
		{"not json", `connection closed`, "invalid"},
		{"trailing", `{"level":"info","ts":1,"msg":"connection closed","conn_id":"c1","code":1} {}`, "trailing"},
		{"missing msg", `{"level":"info","ts":1}`, `missing "msg"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check([]byte(tc.line), events)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("error = %v, want one containing %q", err, tc.err)
			}
		})
	}
}
