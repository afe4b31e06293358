package logschema

import (
	"fmt"
	"slices"
	"strings"
)

// Markdown renders the event table of docs/LOGS.md.
func Markdown() string {
	events := Events()
	names := make([]string, 0, len(events))
	for n := range events {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	b.WriteString("| event (`msg`) | level | fields (required; *optional*) | when |\n| --- | --- | --- | --- |\n")
	for _, n := range names {
		e := events[n]
		var fs []string
		for _, f := range sortedKeys(e.Required) {
			fs = append(fs, fmt.Sprintf("`%s` %s", f, e.Required[f]))
		}
		for _, f := range sortedKeys(e.Optional) {
			fs = append(fs, fmt.Sprintf("*`%s` %s*", f, e.Optional[f]))
		}
		if n == "starting sessiongate" {
			fs = []string{"*the configuration's log view: every setting except secrets*"}
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", n, strings.Join(e.Levels, ", "), strings.Join(fs, ", "), e.Doc)
	}
	return b.String()
}

func sortedKeys(m map[string]Kind) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
