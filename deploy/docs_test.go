package deploy

import (
	"os"
	"strings"
	"testing"
)

// docs/DEPLOY.md quotes the deployment files in ```nginx, ```haproxy and
// ```ini blocks: every line it quotes must still be a line of the file, so
// the page cannot drift from what the tests run.
func TestDeployDocQuotesTheFiles(t *testing.T) {
	doc, err := os.ReadFile("../docs/DEPLOY.md")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"nginx": NginxConf(), "haproxy": HAProxyCfg(), "ini": SystemdUnit()}
	lines := map[string]map[string]bool{}
	for lang, b := range files {
		lines[lang] = map[string]bool{}
		for _, l := range strings.Split(string(b), "\n") {
			lines[lang][strings.TrimSpace(l)] = true
		}
	}
	quoted := map[string]int{}
	lang := "" // the language of the fenced block we are in, "" outside
	inBlock := false
	for i, l := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(l, "```") {
			if inBlock {
				inBlock, lang = false, ""
			} else {
				inBlock, lang = true, strings.TrimPrefix(l, "```")
			}
			continue
		}
		want, checked := lines[lang]
		l = strings.TrimSpace(l)
		if !inBlock || !checked || l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		quoted[lang]++
		if !want[l] {
			t.Errorf("docs/DEPLOY.md:%d quotes %q, which is not a line of the %s file in deploy/", i+1, l, lang)
		}
	}
	for lang := range files {
		if quoted[lang] == 0 {
			t.Errorf("docs/DEPLOY.md quotes no %s line: the check checks nothing", lang)
		}
	}
}
