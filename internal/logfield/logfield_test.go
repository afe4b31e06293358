package logfield

import "testing"

func TestShortHandle(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"full handle", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "0123456789ab"},
		{"already short", "abc", "abc"},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ShortHandle(tc.in); got != tc.want {
				t.Fatalf("ShortHandle(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if f := Handle(tc.in); f.Key != "handle" || f.String != tc.want {
				t.Fatalf("Handle(%q) = %s=%q", tc.in, f.Key, f.String)
			}
		})
	}
}
