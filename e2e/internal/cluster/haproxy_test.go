package cluster

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/sessiongate/sessiongate/deploy"
)

// haproxySections splits a haproxy configuration into its sections
// ("defaults", "frontend lb", ...) -> directive lines, comments dropped.
func haproxySections(cfg string) map[string][]string {
	out := map[string][]string{}
	section := ""
	for _, l := range strings.Split(cfg, "\n") {
		trim := strings.TrimSpace(l)
		switch {
		case trim == "" || strings.HasPrefix(trim, "#"):
		case l == trim:
			section = trim
			out[section] = nil
		default:
			out[section] = append(out[section], trim)
		}
	}
	return out
}

// renderHAProxy renders the harness's haproxy.cfg.
func renderHAProxy(t *testing.T, p haproxyParams) string {
	t.Helper()
	var b bytes.Buffer
	if err := template.Must(template.New("haproxy.cfg").Parse(haproxyConfig)).Execute(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The harness's haproxy configuration and deploy/haproxy/sessiongate.cfg
// agree line for line on the defaults, the frontend's header rules and
// the backend; only the addresses, the certificate, the log target and
// the health-check timings (scaled to the tests' 1 s DRAIN_WINDOW)
// differ. And haproxy accepts the deploy file as it is (with a real
// certificate at its crt path).
func TestHAProxyConfigAgreesWithTheDeployFile(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "lb.pem")
	if err := WriteSelfSignedPEM(cert); err != nil {
		t.Fatal(err)
	}
	harness := haproxySections(renderHAProxy(t, haproxyParams{Port: 41000, StatsPort: 41009, CertPath: cert, Servers: []*Gateway{{ID: "gw1", Port: 41001}}}))
	deployCfg := string(deploy.HAProxyCfg())
	prod := haproxySections(deployCfg)

	// differs says which lines may differ: addresses, certificate, timings.
	differs := func(l string) bool {
		return strings.HasPrefix(l, "bind ") || strings.HasPrefix(l, "server ") || strings.HasPrefix(l, "default-server ")
	}
	for _, section := range []string{"defaults", "frontend lb", "backend gateways"} {
		h, ok1 := harness[section]
		d, ok2 := prod[section]
		if !ok1 || !ok2 {
			t.Errorf("section %q: in the harness %v, in deploy/haproxy %v", section, ok1, ok2)
			continue
		}
		h = slices.DeleteFunc(slices.Clone(h), differs)
		d = slices.DeleteFunc(slices.Clone(d), differs)
		if !slices.Equal(h, d) {
			t.Errorf("section %q differs:\nharness: %q\ndeploy:  %q", section, h, d)
		}
	}
	for _, section := range []string{"frontend lb", "backend gateways"} {
		for _, prefix := range []string{"bind ", "default-server "} {
			if section == "backend gateways" && prefix == "bind " || section == "frontend lb" && prefix == "default-server " {
				continue
			}
			if !slices.ContainsFunc(prod[section], func(l string) bool { return strings.HasPrefix(l, prefix) }) {
				t.Errorf("deploy/haproxy %s has no %q line", section, prefix)
			}
		}
	}

	bin, err := lookPath("haproxy")
	if err != nil {
		t.Fatal(err) // names the Debian package; never a skip
	}
	checked := strings.Replace(deployCfg, "/etc/haproxy/certs/sessiongate.pem", cert, 1)
	checked = strings.Replace(checked, "log /dev/log local0 info", "log stdout format raw local0 info", 1)
	path := filepath.Join(dir, "sessiongate.cfg")
	if err := os.WriteFile(path, []byte(checked), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, "-c", "-f", path).CombinedOutput(); err != nil || bytes.Contains(out, []byte("[WARNING]")) {
		t.Fatalf("haproxy -c on deploy/haproxy/sessiongate.cfg: %v\n%s", err, out)
	}
}
