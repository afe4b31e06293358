package cluster

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiongate/sessiongate/deploy"
)

// nginxTest runs `nginx -t` on a rendered configuration.
func nginxTest(t *testing.T, dir, conf string) {
	t.Helper()
	bin, err := lookPath("nginx")
	if err != nil {
		t.Fatal(err) // names the Debian package; never a skip
	}
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := mkdir(filepath.Join(dir, "nginx-temp")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-t", "-p", dir+"/", "-c", path, "-e", "stderr").CombinedOutput()
	if err != nil {
		t.Fatalf("nginx -t: %v\n%s\n--- nginx.conf\n%s", err, out, conf)
	}
}

// The harness's nginx configuration is deploy/nginx/sessiongate.conf with
// only the addresses, the certificate and the test pages changed: every
// proxy directive operators copy is the one the e2e runs use, and nginx
// accepts the result, with TLS and without.
func TestNginxConfigIsTheDeployFile(t *testing.T) {
	gws := []*Gateway{{ID: "gw1", Port: 41001}, {ID: "gw2", Port: 41002}}
	pages := []lbPage{{Path: "/app.html", File: "/tmp/app.html"}}
	deployConf := string(deploy.NginxConf())
	for _, tt := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"tls", true}} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cert := ""
			if tt.tls {
				cert = filepath.Join(dir, "lb.pem")
				if err := WriteSelfSignedPEM(cert); err != nil {
					t.Fatal(err)
				}
			}
			conf, err := renderNginx([]byte(deployConf), nginxParams{Dir: dir, Port: 41000, CertPath: cert, Servers: gws, Pages: pages})
			if err != nil {
				t.Fatal(err)
			}
			nginxTest(t, dir, conf)
			rendered := map[string]bool{}
			for _, l := range strings.Split(conf, "\n") {
				rendered[strings.TrimSpace(l)] = true
			}
			// Every directive of the deploy file is in the rendered
			// configuration, but for the lines the harness replaces.
			for _, l := range strings.Split(deployConf, "\n") {
				l = strings.TrimSpace(l)
				word, _, _ := strings.Cut(l, " ")
				replaced := word == "listen" || word == "ssl_certificate" || word == "ssl_certificate_key" ||
					(!tt.tls && strings.HasPrefix(word, "ssl_")) || strings.HasPrefix(l, "server 10.")
				if l == "" || strings.HasPrefix(l, "#") || replaced {
					continue
				}
				if !rendered[l] {
					t.Errorf("deploy line %q is not in the harness's nginx.conf", l)
				}
			}
			for _, want := range []string{
				"server 127.0.0.1:41001 max_fails=1 fail_timeout=2s; # gw1",
				"server 127.0.0.1:41002 max_fails=1 fail_timeout=2s; # gw2",
				"location = /app.html {",
				"alias /tmp/app.html;",
			} {
				if !rendered[want] {
					t.Errorf("nginx.conf lacks %q", want)
				}
			}
			wantListen := "listen 127.0.0.1:41000;"
			if tt.tls {
				wantListen = "listen 127.0.0.1:41000 ssl;"
			}
			if !rendered[wantListen] {
				t.Errorf("nginx.conf lacks %q", wantListen)
			}
			if strings.Contains(conf, "10.0.0.") || strings.Contains(conf, "/etc/ssl/") {
				t.Errorf("nginx.conf kept a deploy address or certificate path:\n%s", conf)
			}
			if !tt.tls {
				for l := range rendered {
					if strings.Contains(l, "ssl") && !strings.HasPrefix(l, "#") {
						t.Errorf("plain nginx.conf has %q", l)
					}
				}
			}
		})
	}
}

// A deploy file the renderer does not recognise is an error, never a
// silently different configuration.
func TestNginxRenderRefusesAnUnknownLayout(t *testing.T) {
	p := nginxParams{Dir: "/tmp/x", Port: 1, Servers: []*Gateway{{ID: "gw1", Port: 2}}}
	conf := string(deploy.NginxConf())
	for _, tt := range []struct{ name, from, to string }{
		{"no upstream servers", "    server 10.0.0.", "    # server 10.0.0."},
		{"no listen", "    listen ", "    # listen "},
		{"no location /", "location / {", "location /x/ {"},
		{"a server line without an address", "    server 10.0.0.11:8080 max_fails=1 fail_timeout=2s;", "    server;"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			broken := strings.ReplaceAll(conf, tt.from, tt.to)
			if broken == conf {
				t.Fatalf("%q not in the deploy file", tt.from)
			}
			if out, err := renderNginx([]byte(broken), p); err == nil {
				t.Fatalf("renderNginx accepted a file with %s:\n%s", tt.name, out)
			}
		})
	}
}
