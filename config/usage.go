package config

import (
	"fmt"
	"strings"
)

// Usage lists every variable with its flag, default and meaning, grouped,
// for -h output.
func Usage() string {
	var b strings.Builder
	b.WriteString("Every setting is an environment variable and a flag; the flag wins.\n")
	group := ""
	for _, v := range variables() {
		if v.group != group {
			group = v.group
			fmt.Fprintf(&b, "\n%s:\n", group)
		}
		def := v.def
		if v.defText != "" {
			def = v.defText
		}
		fmt.Fprintf(&b, "  %s (--%s)\n      %s. Default: %s\n", v.name, flagName(v.name), v.help, def)
	}
	return b.String()
}
