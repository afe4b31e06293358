// Package promrules holds only tests: the Prometheus rules in this
// directory are checked and unit-tested with promtool (Debian package
// prometheus), which `make deps` installs. A missing promtool fails the
// test, it never skips.
package promrules

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

const (
	rulesFile = "sessiongate.rules.yml"
	testsFile = "sessiongate_test.yml"
)

// promtool finds the promtool binary or fails the test.
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found: install the Debian package prometheus (`make deps`): %v", err)
	}
	return p
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestRulesCheck(t *testing.T) {
	runPromtool(t, "check", "rules", rulesFile)
}

func TestRulesUnitTests(t *testing.T) {
	runPromtool(t, "test", "rules", testsFile)
}

// Every alert has a unit test where it fires and one where it does not.
func TestEveryAlertTestedBothWays(t *testing.T) {
	alerts := scan(t, rulesFile, regexp.MustCompile(`^\s*- alert:\s*(\S+)`))
	if len(alerts) == 0 {
		t.Fatalf("no alerts in %s", rulesFile)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	name := ""
	alertname := regexp.MustCompile(`^\s*alertname:\s*(\S+)`)
	expAlerts := regexp.MustCompile(`^\s*exp_alerts:\s*(\[\])?\s*$`)
	f, err := os.Open(testsFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := alertname.FindStringSubmatch(sc.Text()); m != nil {
			name = m[1]
		} else if m := expAlerts.FindStringSubmatch(sc.Text()); m != nil && name != "" {
			if m[1] == "[]" {
				quiet[name] = true
			} else {
				fires[name] = true
			}
			name = ""
		}
	}
	for _, a := range alerts {
		if !fires[a] {
			t.Errorf("alert %s: no unit test in %s where it fires", a, testsFile)
		}
		if !quiet[a] {
			t.Errorf("alert %s: no unit test in %s where it stays quiet", a, testsFile)
		}
	}
}

// scan returns the first submatch of re on every line of path.
func scan(t *testing.T, path string, re *regexp.Regexp) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if m := re.FindStringSubmatch(l); m != nil {
			out = append(out, m[1])
		}
	}
	return out
}
