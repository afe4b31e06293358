package logschema

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the event table of docs/LOGS.md from the schema")

const (
	beginMarker = "<!-- events:begin -->\n"
	endMarker   = "<!-- events:end -->"
)

// TestLogsDocMatchesSchema: docs/LOGS.md's event table is the schema's.
// Run `go test ./internal/logschema -update` after changing the schema.
func TestLogsDocMatchesSchema(t *testing.T) {
	path := filepath.Join("..", "..", "docs", "LOGS.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	i, j := strings.Index(doc, beginMarker), strings.Index(doc, endMarker)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the %q ... %q markers", path, beginMarker, endMarker)
	}
	want := Markdown()
	got := doc[i+len(beginMarker) : j]
	if got == want {
		return
	}
	if !*update {
		t.Fatalf("docs/LOGS.md's event table differs from the schema; run: go test ./internal/logschema -update")
	}
	doc = doc[:i+len(beginMarker)] + want + doc[j:]
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSchemaWellFormed: every event has a level, and no field is both
// required and optional or shadows a common key with another kind.
func TestSchemaWellFormed(t *testing.T) {
	for name, e := range Events() {
		if len(e.Levels) == 0 {
			t.Errorf("%q has no level", name)
		}
		for f, k := range e.Required {
			if _, ok := e.Optional[f]; ok {
				t.Errorf("%q: %s both required and optional", name, f)
			}
			if k == 0 {
				t.Errorf("%q: %s has no kind", name, f)
			}
		}
		for f, k := range e.Optional {
			if k == 0 {
				t.Errorf("%q: optional %s has no kind", name, f)
			}
		}
	}
}
