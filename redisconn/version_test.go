package redisconn

import "testing"

func TestParseVersion(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want version
		ok   bool
	}{
		{name: "full", in: "7.2.4", want: version{7, 2, 4}, ok: true},
		{name: "minimum", in: "6.2.0", want: version{6, 2, 0}, ok: true},
		{name: "two parts", in: "6.2", want: version{6, 2, 0}, ok: true},
		{name: "release candidate", in: "7.0.0-rc1", want: version{7, 0, 0}, ok: true},
		{name: "unstable", in: "255.255.255", want: version{255, 255, 255}, ok: true},
		{name: "spaces", in: " 6.0.16 ", want: version{6, 0, 16}, ok: true},
		{name: "empty", in: ""},
		{name: "one part", in: "7"},
		{name: "four parts", in: "7.2.4.1"},
		{name: "letters", in: "seven.two"},
		{name: "empty part", in: "7..4"},
		{name: "negative", in: "7.-2.4"},
		{name: "plus sign", in: "7.+2.4"},
		{name: "overflow", in: "99999999999999999999.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseVersion(tc.in)
			if (err == nil) != tc.ok || (tc.ok && got != tc.want) {
				t.Fatalf("parseVersion(%q) = %v, %v; want %v (ok=%v)", tc.in, got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestVersionLess(t *testing.T) {
	minV, err := parseVersion(MinVersion)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		v    version
		old  bool
	}{
		{name: "5.0.7", v: version{5, 0, 7}, old: true},
		{name: "6.0.16", v: version{6, 0, 16}, old: true},
		{name: "6.1.99", v: version{6, 1, 99}, old: true},
		{name: "6.2.0", v: version{6, 2, 0}},
		{name: "6.2.14", v: version{6, 2, 14}},
		{name: "7.0.0", v: version{7, 0, 0}},
		{name: "10.0.0", v: version{10, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.v.less(minV); got != tc.old {
				t.Fatalf("%v older than %v = %v, want %v", tc.v, minV, got, tc.old)
			}
		})
	}
}

func TestVersionFromInfo(t *testing.T) {
	tests := []struct {
		name, info, want string
	}{
		{name: "redis", info: "# Server\r\nredis_version:7.2.4\r\nredis_git_sha1:00000000\r\n", want: "7.2.4"},
		{name: "valkey", info: "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:8.0.1\r\n", want: "7.2.4"},
		{name: "not first", info: "# Server\nredis_mode:standalone\nredis_version:6.0.16\n", want: "6.0.16"},
		{name: "no newline at end", info: "redis_version:6.2.0", want: "6.2.0"},
		{name: "missing", info: "# Server\r\nredis_mode:standalone\r\n", want: ""},
		{name: "lookalike field", info: "xredis_version:1.0.0\r\n", want: ""},
		{name: "empty", info: "", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := versionFromInfo(tc.info); got != tc.want {
				t.Fatalf("versionFromInfo = %q, want %q", got, tc.want)
			}
		})
	}
}
