package cluster

import "testing"

// Options.Pages end up in haproxy.cfg and nginx.conf unquoted: anything that would break
// the line (or change its meaning) is refused before haproxy starts.
func TestLBPagesRefusesWhatWouldBreakTheConfig(t *testing.T) {
	for _, tt := range []struct {
		name, path, file string
		ok               bool
	}{
		{name: "plain", path: "/app.html", file: "/tmp/app.html", ok: true},
		{name: "relative path", path: "app.html", file: "/tmp/app.html"},
		{name: "space in path", path: "/a b", file: "/tmp/app.html"},
		{name: "quote in path", path: `/a"`, file: "/tmp/app.html"},
		{name: "comment in path", path: "/a#b", file: "/tmp/app.html"},
		{name: "directive end in path", path: "/a;b", file: "/tmp/app.html"},
		{name: "block in file", path: "/a", file: "/tmp/a}b"},
		{name: "variable in file", path: "/a", file: "/tmp/$host"},
		{name: "newline in file", path: "/a", file: "/tmp/a\nserver x 1.2.3.4:80"},
		{name: "relative file", path: "/a", file: "app.html"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pages, err := lbPages(map[string]string{tt.path: tt.file})
			if (err == nil) != tt.ok {
				t.Fatalf("lbPages(%q -> %q) = %v, %v; want ok %v", tt.path, tt.file, pages, err, tt.ok)
			}
		})
	}
	pages, err := lbPages(map[string]string{"/b": "/tmp/b", "/a": "/tmp/a"})
	if err != nil || len(pages) != 2 || pages[0].Path != "/a" || pages[1].Path != "/b" {
		t.Fatalf("lbPages = %v, %v; want /a then /b", pages, err)
	}
}
